#ifndef TWIST_PROTOCOLS_HTTP_H_
#define TWIST_PROTOCOLS_HTTP_H_

// An HTTP/1.1 server: the core of twisted.web (Request, Resource, Site and
// the HTTPChannel protocol underneath them).
//
//   class Hello : public twist::Resource {
//    public:
//     bool isLeaf() const override { return true; }
//     void render_GET(twist::Request& request) override {
//       request.setHeader("Content-Type", "text/plain");
//       request.write("Hello, World");
//       request.finish();
//     }
//   };
//   Hello root;
//   twist::Site site(reactor.get(), &root);
//   reactor->listenTCP(8080, &site);
//
// Where this differs from twisted.web is in docs/design.md ("HTTP").

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/delayed_call.h"
#include "framework/protocol.h"
#include "framework/reactor_time.h"
#include "framework/transport.h"
#include "protocols/http_parser.h"

namespace twist {

class HttpChannel;
class Site;

/// What a Site is told to enforce.
struct HttpOptions {
  HttpLimits limits;
  /// A keep-alive connection with no request under way is closed after
  /// this long without input (a half-received request gets 408 first); a
  /// closing connection whose client does not take the last answer is
  /// aborted after up to twice this long.
  absl::Duration keepalive_timeout = absl::Seconds(60);
};

/// One request and its response (twisted.web.server.Request). Given to a
/// Resource's render methods; valid until finish() returns or, if the
/// response is finished later, until the connection is lost (notifyFinish()
/// says which). Nothing is allocated per request once a connection has
/// served its first: the request's buffers are kept and reused.
class Request {
 public:
  // ---- The request ----
  absl::string_view method() const { return parser_->method(); }
  /// The request target as sent: "/a/b?x=1".
  absl::string_view uri() const { return parser_->target(); }
  /// uri() without the query, still percent-encoded: "/a/b".
  absl::string_view path() const { return path_; }
  /// The query, without '?': "x=1".
  absl::string_view query() const { return query_; }
  /// "HTTP/1.0" or "HTTP/1.1".
  absl::string_view clientproto() const { return parser_->version(); }
  /// The last value of header `name` (case-insensitive), or nullopt, as
  /// in Twisted.
  std::optional<absl::string_view> getHeader(absl::string_view name) const;
  /// Every header field, in the order received.
  const std::vector<HttpField>& requestHeaders() const { return parser_->headers(); }
  /// The body (Content-Length or chunked, decoded).
  absl::string_view content() const { return content_; }
  /// Query arguments (and, for a POST of application/x-www-form-urlencoded,
  /// the body's), percent-decoded, in order: Twisted's request.args as a
  /// list of pairs. Parsed on first use.
  const std::vector<std::pair<std::string, std::string>>& args();
  /// The first value of argument `name`, or nullopt.
  std::optional<absl::string_view> arg(absl::string_view name);
  /// The part of the path below the resource being rendered (Twisted's
  /// postpath, joined by '/', still percent-encoded): "b/c.txt" for
  /// "/a/b/c.txt" rendered by the child "a" of the root.
  absl::string_view postpath() const { return postpath_; }
  Address getClientAddress() const;
  Transport* transport() const;

  // ---- The response ----
  void setResponseCode(int code, absl::string_view message = "");
  int code() const { return code_; }
  /// Sets header `name` to `value`, replacing an earlier value.
  /// Content-Length, if set, frames the body; Date, Server and Connection
  /// are the server's own.
  void setHeader(absl::string_view name, absl::string_view value);
  /// Body bytes. Written inside a render method they are held until it
  /// returns: a response finished there goes out with a Content-Length, in
  /// one write. Later writes go out at once, chunked (or as they are, with a
  /// Content-Length set or to an HTTP/1.0 client, which is then closed).
  /// A HEAD request's body is counted, never sent.
  void write(absl::string_view data);
  /// Ends the response. Call it exactly once; nothing after it. After the
  /// connection is lost (in notifyFinish's callback) it sends nothing, as
  /// write() does.
  void finish();
  bool finished() const { return finished_; }
  /// Calls `fn` once: with OK when finish() has sent the response, or with
  /// the reason when the connection is lost first (the request is then
  /// gone once `fn` returns).
  void notifyFinish(absl::AnyInvocable<void(const absl::Status&)> fn);

  /// A producer for this response's body (Twisted's request.registerProducer):
  /// a streaming one is paused while the client's connection has more than
  /// its high water mark queued and resumed at the low mark; a pull one
  /// (streaming=false) has resumeProducing() called until it pauses the
  /// response by filling the queue, and again when it drains. Unregistered
  /// by finish(); stopProducing() if the connection is lost.
  void registerProducer(Producer* producer, bool streaming);
  void unregisterProducer();
  /// Keeps `p` alive until the next request on this connection or the
  /// connection's end (for a producer made for this response).
  void keep(std::unique_ptr<Producer> p);

 private:
  friend class HttpChannel;
  friend class Site;
  explicit Request(HttpChannel* channel, const HttpParser* parser)
      : channel_(channel), parser_(parser) {}
  void begin(bool head_method);
  // Builds the response head (or finds it in the Site's cache) and marks
  // it sent; the view is valid until the next head is built.
  absl::string_view sendHeaders(bool final_length);
  // Sends the head, if not sent yet, unframed by a length (chunked,
  // close-delimited, or a HEAD's), then what render held.
  void sendHeld();
  void writeBody(absl::string_view data);
  void lost(const absl::Status& reason);

  HttpChannel* channel_;
  const HttpParser* parser_;
  absl::string_view path_, query_, postpath_, content_;
  std::string body_;  // the request body, gathered from its pieces
  std::vector<std::pair<std::string, std::string>> args_;
  bool args_parsed_ = false;
  int code_ = 200;
  std::string message_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string held_;  // body written during render, not sent yet
  uint64_t head_bytes_ = 0;  // body bytes of a HEAD response, counted
  bool is_head_ = false;
  bool in_render_ = false;
  bool headers_sent_ = false;
  bool chunked_ = false;
  bool close_delimited_ = false;
  bool finished_ = false;
  bool has_length_ = false;
  bool has_type_ = false;
  absl::AnyInvocable<void(const absl::Status&)> notify_;
  std::unique_ptr<Producer> kept_;
};

/// A node of the resource tree (twisted.web.resource.Resource).
class Resource {
 public:
  Resource() = default;
  virtual ~Resource() = default;
  Resource(const Resource&) = delete;
  Resource& operator=(const Resource&) = delete;

  /// A leaf renders every path below it (request.postpath() is the rest).
  virtual bool isLeaf() const { return false; }
  /// Adds a child reached by the path segment `name` (percent-decoded).
  void putChild(absl::string_view name, std::unique_ptr<Resource> child);
  /// Called for a segment with no child put: return a resource (owned
  /// elsewhere) or nullptr for 404 Not Found. Default: nullptr.
  virtual Resource* getChild(absl::string_view name, Request& request) { return nullptr; }
  /// The child put under `name`, else getChild().
  Resource* getChildWithDefault(absl::string_view name, Request& request);

  /// Calls render_METHOD; HEAD calls render_HEAD, which calls render_GET.
  virtual void render(Request& request);
  virtual void render_GET(Request& request) { notAllowed(request); }
  virtual void render_HEAD(Request& request) { render_GET(request); }
  virtual void render_POST(Request& request) { notAllowed(request); }
  virtual void render_PUT(Request& request) { notAllowed(request); }
  virtual void render_DELETE(Request& request) { notAllowed(request); }
  virtual void render_PATCH(Request& request) { notAllowed(request); }
  virtual void render_OPTIONS(Request& request) { notAllowed(request); }
  /// The Allow header of a 405 answer (C++ cannot list the overridden
  /// render methods, as Twisted does).
  virtual absl::string_view allowedMethods() const { return "GET, HEAD"; }

 protected:
  /// Finishes `request` with 405 and allowedMethods().
  void notAllowed(Request& request);

 private:
  absl::flat_hash_map<std::string, std::unique_ptr<Resource>> children_;
};

/// Finishes `request` with `code`, a text/plain body of its reason phrase.
void ErrorPage(Request& request, int code);

/// The factory of HTTP connections (twisted.web.server.Site): each gets an
/// HttpChannel that hands its requests to the resource tree at `root`.
/// `reactor` (for the Date header and the keep-alive timeout) and `root`
/// are not owned and must outlive the Site's connections.
class Site : public Factory {
 public:
  Site(ReactorTime* reactor, Resource* root, HttpOptions options = {});
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;

  /// Finds the resource for the request's path and renders it.
  void handle(Request& request);

  /// "Date: <IMF-fixdate>\r\n" for the wall clock's current second,
  /// formatted once a second.
  absl::string_view dateLine();
  ReactorTime* reactor() const { return reactor_; }
  const HttpOptions& options() const { return options_; }

 private:
  friend class Request;
  ReactorTime* reactor_;
  Resource* root_;
  HttpOptions options_;
  int64_t date_second_ = -1;
  std::string date_line_;
  // The last response head whose length was final, and what it was built
  // from (Request::sendHeaders).
  struct HeadCache {
    bool valid = false;
    int64_t date_second = -1;
    int code = 0;
    uint64_t length = 0;
    bool is_head = false;
    bool keep_alive = false;
    int minor = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string head;
  };
  HeadCache head_cache_;
  std::string segment_;  // a decoded path segment, reused
};

/// The protocol of one HTTP connection (twisted.web.http.HTTPChannel):
/// parses requests, answers them in order, keeps the connection alive or
/// closes it. Public for tests and for Sites that want to watch it.
class HttpChannel : public Protocol, public Producer {
 public:
  explicit HttpChannel(Site* site);
  ~HttpChannel() override;

  void connectionMade() override;
  void dataReceived(absl::string_view data) override;
  void connectionLost(const absl::Status& reason) override;

  /// Input read and not parsed yet (held while a response is under way).
  size_t bufferedInput() const { return pending_.size() - pending_off_; }
  /// Requests whose handling has begun.
  uint64_t requestsStarted() const { return requests_; }

  // Producer: the transport's, for the response side's flow control.
  void pauseProducing() override;
  void resumeProducing() override;
  void stopProducing() override;

 private:
  friend class Request;
  void process(absl::string_view input, bool from_pending);
  void errorResponse(int status);
  // Sends bytes of the response: held while the reads of one dataReceived
  // are parsed (answers to pipelined requests go out in one write).
  void send(absl::string_view data);
  void send2(absl::string_view a, absl::string_view b);
  void send3(absl::string_view a, absl::string_view b, absl::string_view c);
  void flush();
  void requestDone();
  void updateReading();
  void scheduleResume();
  void resumeParsing();
  void askPullProducer();
  void onTimeout();
  absl::Time now() const { return site_->reactor()->seconds(); }

  Site* site_;
  HttpParser parser_;
  Request request_;
  std::string pending_;  // input not parsed yet
  size_t pending_off_ = 0;
  std::string out_;      // output held during dataReceived
  std::string scratch_;  // a response head being built
  uint64_t sent_bytes_ = 0;
  bool corked_ = false;
  bool in_process_ = false;
  bool in_progress_ = false;  // a request is being answered
  bool keep_alive_ = true;
  bool dead_ = false;         // closing: parse nothing more
  bool write_paused_ = false;
  bool reading_paused_ = false;
  bool lost_ = false;
  bool abort_next_ = false;  // the timer cuts a close that has not flushed
  Producer* producer_ = nullptr;  // the response's
  bool producer_streaming_ = false;
  bool asking_ = false;
  uint64_t requests_ = 0;
  absl::Time last_input_;
  DelayedCall timer_;
  DelayedCall resume_call_;
};

/// Percent-decodes `in` into `*out` ('+' stays '+'); false if a '%' is not
/// followed by two hex digits.
bool PercentDecode(absl::string_view in, std::string* out);

}  // namespace twist

#endif  // TWIST_PROTOCOLS_HTTP_H_
