#include "protocols/http.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace twist {

namespace {

constexpr size_t kFlushAt = 64 * 1024;     // held output written out beyond this
constexpr size_t kKeepCapacity = 8 * 1024;  // buffers larger than this are given back

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(c | 0x20);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void ParseArgs(absl::string_view s, std::vector<std::pair<std::string, std::string>>* out) {
  std::string plus;
  while (!s.empty()) {
    const size_t amp = s.find('&');
    absl::string_view item = s.substr(0, amp);
    s = amp == absl::string_view::npos ? absl::string_view() : s.substr(amp + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    std::string key, value;
    absl::string_view k = item.substr(0, eq);
    plus.assign(k.data(), k.size());
    std::replace(plus.begin(), plus.end(), '+', ' ');
    if (!PercentDecode(plus, &key)) key = plus;
    if (eq != absl::string_view::npos) {
      absl::string_view v = item.substr(eq + 1);
      plus.assign(v.data(), v.size());
      std::replace(plus.begin(), plus.end(), '+', ' ');
      if (!PercentDecode(plus, &value)) value = plus;
    }
    out->emplace_back(std::move(key), std::move(value));
  }
}

void GiveBackLarge(std::string* s) {
  if (s->capacity() > kKeepCapacity) std::string().swap(*s);
}

}  // namespace

bool PercentDecode(absl::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// ---- Request ---------------------------------------------------------------

std::optional<absl::string_view> Request::getHeader(absl::string_view name) const {
  // The last value, as Twisted's getHeader returns.
  const std::vector<HttpField>& fields = parser_->headers();
  for (auto f = fields.rbegin(); f != fields.rend(); ++f) {
    if (HttpEqualsIgnoreCase(f->name, name)) return f->value;
  }
  return std::nullopt;
}

const std::vector<std::pair<std::string, std::string>>& Request::args() {
  if (!args_parsed_) {
    args_parsed_ = true;
    ParseArgs(query_, &args_);
    if (method() == "POST") {
      std::optional<absl::string_view> type = getHeader("content-type");
      if (type && absl::StartsWithIgnoreCase(*type, "application/x-www-form-urlencoded")) {
        ParseArgs(content_, &args_);
      }
    }
  }
  return args_;
}

std::optional<absl::string_view> Request::arg(absl::string_view name) {
  for (const auto& [k, v] : args()) {
    if (k == name) return absl::string_view(v);
  }
  return std::nullopt;
}

Address Request::getClientAddress() const { return channel_->transport()->getPeer(); }
Transport* Request::transport() const { return channel_->transport(); }

void Request::setResponseCode(int code, absl::string_view message) {
  code_ = code;
  message_.assign(message.data(), message.size());
}

void Request::setHeader(absl::string_view name, absl::string_view value) {
  if (name.size() == 14 && HttpEqualsIgnoreCase(name, "content-length")) has_length_ = true;
  if (name.size() == 12 && HttpEqualsIgnoreCase(name, "content-type")) has_type_ = true;
  for (auto& [n, v] : headers_) {
    if (HttpEqualsIgnoreCase(n, name)) {
      v.assign(value.data(), value.size());
      return;
    }
  }
  headers_.emplace_back(std::piecewise_construct, std::forward_as_tuple(name.data(), name.size()),
                        std::forward_as_tuple(value.data(), value.size()));
}

void Request::begin(bool head_method) {
  absl::string_view target = parser_->target();
  // absolute-form: the path starts after the authority (RFC 9112 3.2.2).
  if (!target.empty() && target[0] != '/') {
    const size_t scheme = target.find("://");
    if (scheme != absl::string_view::npos) {
      target.remove_prefix(scheme + 3);
      const size_t slash = target.find_first_of("/?");
      target = slash == absl::string_view::npos ? absl::string_view("/") : target.substr(slash);
    }
  }
  const size_t q = target.find('?');
  path_ = target.substr(0, q);
  query_ = q == absl::string_view::npos ? absl::string_view() : target.substr(q + 1);
  postpath_ = {};
  content_ = body_;
  args_.clear();
  args_parsed_ = false;
  code_ = 200;
  message_.clear();
  headers_.clear();
  held_.clear();
  head_bytes_ = 0;
  is_head_ = head_method;
  in_render_ = false;
  headers_sent_ = chunked_ = close_delimited_ = finished_ = false;
  has_length_ = has_type_ = false;
  notify_ = nullptr;
  kept_.reset();
}

absl::string_view Request::sendHeaders(bool final_length) {
  Site* site = channel_->site_;
  const absl::string_view date = site->dateLine();
  const uint64_t length = is_head_ ? head_bytes_ : held_.size();
  // A head with its length final has no side effects and depends only on
  // what the key below holds: the one built last is reused while they all
  // match (hello_http's every response), instead of being built again.
  Site::HeadCache& cache = site->head_cache_;
  const bool cacheable = final_length && message_.empty();
  if (cacheable && cache.valid && cache.date_second == site->date_second_ &&
      cache.code == code_ && cache.length == length && cache.is_head == is_head_ &&
      cache.keep_alive == channel_->keep_alive_ && cache.minor == parser_->minorVersion() &&
      cache.headers == headers_) {
    headers_sent_ = true;
    return cache.head;
  }
  std::string& h = cacheable ? cache.head : channel_->scratch_;
  h.clear();
  if (code_ == 200 && message_.empty()) {
    h.append("HTTP/1.1 200 OK\r\n");
  } else {
    absl::StrAppend(&h, "HTTP/1.1 ", code_, " ",
                    message_.empty() ? HttpReason(code_) : absl::string_view(message_), "\r\n");
  }
  h.append("Server: twist\r\n");
  h.append(date.data(), date.size());
  for (const auto& [n, v] : headers_) absl::StrAppend(&h, n, ": ", v, "\r\n");
  const bool no_body = code_ < 200 || code_ == 204 || code_ == 304;
  if (!has_type_ && !no_body) h.append("Content-Type: text/html\r\n");  // Twisted's default
  if (!has_length_ && !no_body) {
    if (final_length) {
      absl::StrAppend(&h, "Content-Length: ", length, "\r\n");
    } else if (is_head_) {
      // A HEAD answered before its length is known: no framing at all.
    } else if (parser_->minorVersion() == 1) {
      h.append("Transfer-Encoding: chunked\r\n");
      chunked_ = true;
    } else {
      close_delimited_ = true;  // HTTP/1.0 has no chunks: the close ends it
      channel_->keep_alive_ = false;
    }
  }
  if (!channel_->keep_alive_) {
    h.append("Connection: close\r\n");
  } else if (parser_->minorVersion() == 0) {
    h.append("Connection: keep-alive\r\n");
  }
  h.append("\r\n");
  headers_sent_ = true;
  if (cacheable) {
    cache.valid = true;
    cache.date_second = site->date_second_;
    cache.code = code_;
    cache.length = length;
    cache.is_head = is_head_;
    cache.keep_alive = channel_->keep_alive_;
    cache.minor = parser_->minorVersion();
    cache.headers = headers_;
  }
  return h;
}

void Request::writeBody(absl::string_view data) {
  if (data.empty() || is_head_ || code_ < 200 || code_ == 204 || code_ == 304) return;
  if (chunked_) {
    char size[24];
    char* end = size;
    // Hex length, then CRLF.
    char digits[16];
    int n = 0;
    for (size_t v = data.size(); v != 0; v >>= 4) digits[n++] = "0123456789abcdef"[v & 15];
    while (n > 0) *end++ = digits[--n];
    *end++ = '\r';
    *end++ = '\n';
    channel_->send3(absl::string_view(size, static_cast<size_t>(end - size)), data, "\r\n");
  } else {
    channel_->send(data);
  }
}

void Request::write(absl::string_view data) {
  if (finished_) return;
  if (is_head_) {
    head_bytes_ += data.size();
    if (!in_render_) sendHeld();
    return;
  }
  if (in_render_ && !headers_sent_) {
    held_.append(data.data(), data.size());
    return;
  }
  sendHeld();
  writeBody(data);
}

void Request::sendHeld() {
  if (!headers_sent_) channel_->send(sendHeaders(false));
  if (!held_.empty()) {
    writeBody(held_);
    held_.clear();
  }
}

void Request::finish() {
  if (finished_) return;
  if (!headers_sent_) {
    const absl::string_view head = sendHeaders(true);
    const bool no_body = is_head_ || code_ < 200 || code_ == 204 || code_ == 304;
    channel_->send2(head, no_body ? absl::string_view() : held_);
  } else if (chunked_) {
    channel_->send("0\r\n\r\n");
  }
  GiveBackLarge(&held_);
  finished_ = true;
  channel_->requestDone();
  if (notify_) {
    auto fn = std::move(notify_);
    notify_ = nullptr;
    fn(absl::OkStatus());
  }
}

void Request::notifyFinish(absl::AnyInvocable<void(const absl::Status&)> fn) {
  notify_ = std::move(fn);
}

void Request::lost(const absl::Status& reason) {
  if (notify_) {
    auto fn = std::move(notify_);
    notify_ = nullptr;
    fn(reason.ok() ? absl::UnavailableError("connection closed before the response was finished")
                   : reason);
  }
}

void Request::registerProducer(Producer* producer, bool streaming) {
  if (finished_ || channel_->lost_) {
    producer->stopProducing();
    return;
  }
  // What render held goes out now, so the transport's queue is what the
  // producer is paced by.
  sendHeld();
  channel_->flush();
  channel_->producer_ = producer;
  channel_->producer_streaming_ = streaming;
  if (streaming) {
    if (channel_->write_paused_) producer->pauseProducing();
  } else {
    channel_->askPullProducer();
  }
}

void Request::unregisterProducer() { channel_->producer_ = nullptr; }

void Request::keep(std::unique_ptr<Producer> p) { kept_ = std::move(p); }

// ---- Resource --------------------------------------------------------------

void Resource::putChild(absl::string_view name, std::unique_ptr<Resource> child) {
  children_[name] = std::move(child);
}

Resource* Resource::getChildWithDefault(absl::string_view name, Request& request) {
  if (!children_.empty()) {
    auto it = children_.find(name);
    if (it != children_.end()) return it->second.get();
  }
  return getChild(name, request);
}

void Resource::render(Request& request) {
  const absl::string_view m = request.method();
  if (m == "GET") return render_GET(request);
  if (m == "HEAD") return render_HEAD(request);
  if (m == "POST") return render_POST(request);
  if (m == "PUT") return render_PUT(request);
  if (m == "DELETE") return render_DELETE(request);
  if (m == "PATCH") return render_PATCH(request);
  if (m == "OPTIONS") return render_OPTIONS(request);
  notAllowed(request);
}

void Resource::notAllowed(Request& request) {
  request.setHeader("Allow", allowedMethods());
  ErrorPage(request, 405);
}

void ErrorPage(Request& request, int code) {
  request.setResponseCode(code);
  request.setHeader("Content-Type", "text/plain");
  request.write(HttpReason(code));
  request.finish();
}

// ---- Site ------------------------------------------------------------------

Site::Site(ReactorTime* reactor, Resource* root, HttpOptions options)
    : reactor_(reactor), root_(root), options_(options) {}

std::unique_ptr<Protocol> Site::buildProtocol(const Address&) {
  return std::make_unique<HttpChannel>(this);
}

absl::string_view Site::dateLine() {
  // time() is a vDSO read of a coarse clock: cheap enough per response.
  const int64_t second = static_cast<int64_t>(::time(nullptr));
  if (second != date_second_) {
    date_second_ = second;
    const time_t t = static_cast<time_t>(second);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    const size_t n = strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    date_line_.assign(buf, n);
  }
  return date_line_;
}

void Site::handle(Request& request) {
  Resource* r = root_;
  absl::string_view rest = request.path();
  if (!rest.empty() && rest[0] == '/') rest.remove_prefix(1);
  // Twisted's getResourceFor: one segment of the path per level until a
  // leaf; "/" is the one segment "".
  while (!r->isLeaf()) {
    const size_t slash = rest.find('/');
    absl::string_view seg = rest.substr(0, slash);
    if (seg.find('%') != absl::string_view::npos) {
      if (!PercentDecode(seg, &segment_)) return ErrorPage(request, 400);
      seg = segment_;
    }
    Resource* child = r->getChildWithDefault(seg, request);
    if (child == nullptr) return ErrorPage(request, 404);
    r = child;
    if (slash == absl::string_view::npos) {
      rest = {};
      break;
    }
    rest.remove_prefix(slash + 1);
  }
  request.postpath_ = rest;
  r->render(request);
}

// ---- HttpChannel -----------------------------------------------------------

HttpChannel::HttpChannel(Site* site)
    : site_(site), parser_(site->options().limits), request_(this, &parser_) {}

HttpChannel::~HttpChannel() {
  if (timer_.active()) timer_.cancel().IgnoreError();
  if (resume_call_.active()) resume_call_.cancel().IgnoreError();
}

void HttpChannel::connectionMade() {
  transport()->registerProducer(this, /*streaming=*/true).IgnoreError();
  // Responses are written whole, one write per read of requests; a streamed
  // body's small pieces must not wait for the client's delayed ACK (nginx's
  // tcp_nodelay, on by default).
  if (auto* tcp = dynamic_cast<TcpTransport*>(transport())) tcp->setTcpNoDelay(true).IgnoreError();
  last_input_ = now();
  const absl::Duration timeout = site_->options().keepalive_timeout;
  if (timeout > absl::ZeroDuration()) {
    timer_ = site_->reactor()->callLater(timeout, [this] { onTimeout(); });
  }
}

void HttpChannel::dataReceived(absl::string_view data) {
  if (dead_) return;
  last_input_ = now();
  if (bufferedInput() == 0 && !in_progress_ && !write_paused_) {
    process(data, /*from_pending=*/false);
    return;
  }
  if (pending_off_ > 0) {
    pending_.erase(0, pending_off_);
    pending_off_ = 0;
  }
  pending_.append(data.data(), data.size());
  if (in_progress_ || write_paused_) {
    updateReading();
    return;
  }
  process(pending_, /*from_pending=*/true);
}

void HttpChannel::process(absl::string_view input, bool from_pending) {
  in_process_ = true;
  corked_ = true;
  absl::string_view in = input;
  while (!dead_ && !in_progress_ && !write_paused_ && !lost_) {
    absl::string_view body;
    const HttpParser::Event e = parser_.parse(&in, &body);
    if (e == HttpParser::Event::kNeedMore) break;
    switch (e) {
      case HttpParser::Event::kHead:
        request_.body_.clear();
        if (parser_.expectContinue() && parser_.hasBody() && parser_.minorVersion() == 1) {
          send("HTTP/1.1 100 Continue\r\n\r\n");
        }
        break;
      case HttpParser::Event::kBody:
        request_.body_.append(body.data(), body.size());
        break;
      case HttpParser::Event::kComplete: {
        ++requests_;
        in_progress_ = true;
        keep_alive_ = parser_.keepAlive();
        request_.begin(parser_.method() == "HEAD");
        request_.in_render_ = true;
        site_->handle(request_);
        request_.in_render_ = false;
        if (!request_.finished_ && !lost_ && !request_.held_.empty()) request_.sendHeld();
        break;
      }
      case HttpParser::Event::kError:
        errorResponse(parser_.error());
        break;
      case HttpParser::Event::kNeedMore:
        break;
    }
  }
  if (dead_ || lost_) {
    pending_.clear();
    pending_off_ = 0;
  } else if (from_pending) {
    pending_off_ = static_cast<size_t>(in.data() - pending_.data());
    if (pending_off_ == pending_.size()) {
      pending_.clear();
      pending_off_ = 0;
      GiveBackLarge(&pending_);
    }
  } else if (!in.empty()) {
    pending_.assign(in.data(), in.size());
    pending_off_ = 0;
  }
  corked_ = false;
  flush();
  in_process_ = false;
  updateReading();
}

void HttpChannel::errorResponse(int status) {
  const absl::string_view reason = HttpReason(status);
  scratch_.clear();
  absl::StrAppend(&scratch_, "HTTP/1.1 ", status, " ", reason, "\r\nServer: twist\r\n",
                  site_->dateLine(),
                  "Content-Type: text/plain\r\nContent-Length: ", reason.size(),
                  "\r\nConnection: close\r\n\r\n", reason);
  send(scratch_);
  dead_ = true;
  flush();
  transport()->loseConnection();
}

void HttpChannel::send(absl::string_view data) {
  sent_bytes_ += data.size();
  if (corked_) {
    out_.append(data.data(), data.size());
    if (out_.size() >= kFlushAt) flush();
  } else if (!data.empty()) {
    transport()->write(data);
  }
}

void HttpChannel::send2(absl::string_view a, absl::string_view b) {
  if (corked_ || b.empty()) {
    send(a);
    send(b);
    return;
  }
  sent_bytes_ += a.size() + b.size();
  const absl::string_view pieces[] = {a, b};
  transport()->writeSequence(pieces);
}

void HttpChannel::send3(absl::string_view a, absl::string_view b, absl::string_view c) {
  if (corked_) {
    send(a);
    send(b);
    send(c);
    return;
  }
  sent_bytes_ += a.size() + b.size() + c.size();
  const absl::string_view pieces[] = {a, b, c};
  transport()->writeSequence(pieces);
}

void HttpChannel::flush() {
  if (out_.empty()) return;
  // Written from a copy-free view, then cleared: write() may call
  // pauseProducing(), which does not touch out_.
  transport()->write(out_);
  out_.clear();
  GiveBackLarge(&out_);
}

void HttpChannel::requestDone() {
  in_progress_ = false;
  producer_ = nullptr;
  if (!keep_alive_) {
    dead_ = true;
    // Out before the close, even mid-process(): a TLS transport sends
    // close_notify in loseConnection() and drops what is written after it.
    flush();
    transport()->loseConnection();
    return;
  }
  if (!in_process_) {
    updateReading();
    if (bufferedInput() > 0) scheduleResume();
  }
}

void HttpChannel::updateReading() {
  if (dead_ || lost_) return;
  const bool want = in_progress_ || write_paused_;
  if (want == reading_paused_) return;
  reading_paused_ = want;
  if (want) {
    transport()->pauseProducing();
  } else {
    transport()->resumeProducing();
  }
}

void HttpChannel::scheduleResume() {
  // lost_: a response finished after connectionLost (its writes are
  // dropped by the transport) must not call this channel back.
  if (lost_ || resume_call_.active()) return;
  resume_call_ = site_->reactor()->callLater(absl::ZeroDuration(), [this] { resumeParsing(); });
}

void HttpChannel::resumeParsing() {
  if (dead_ || lost_ || in_progress_ || write_paused_ || bufferedInput() == 0) return;
  process(absl::string_view(pending_).substr(pending_off_), /*from_pending=*/true);
}

void HttpChannel::pauseProducing() {
  write_paused_ = true;
  if (producer_ != nullptr && producer_streaming_) producer_->pauseProducing();
  if (!in_process_) updateReading();
}

void HttpChannel::resumeProducing() {
  write_paused_ = false;
  if (producer_ != nullptr) {
    if (producer_streaming_) {
      producer_->resumeProducing();
    } else {
      askPullProducer();
    }
  }
  if (!in_process_) {
    updateReading();
    if (!in_progress_ && bufferedInput() > 0) scheduleResume();
  }
}

void HttpChannel::stopProducing() {
  if (Producer* p = std::exchange(producer_, nullptr)) p->stopProducing();
}

void HttpChannel::askPullProducer() {
  if (asking_) return;
  asking_ = true;
  // A pull producer writes once per resumeProducing(); it is asked again
  // until the queue fills (write_paused_) or it stops writing.
  while (producer_ != nullptr && !producer_streaming_ && !write_paused_ && !lost_) {
    const uint64_t before = sent_bytes_;
    producer_->resumeProducing();
    if (sent_bytes_ == before) break;
  }
  asking_ = false;
}

void HttpChannel::onTimeout() {
  if (lost_) return;
  const absl::Duration timeout = site_->options().keepalive_timeout;
  if (dead_) {
    // Closing, and the last answer not flushed: a client that does not
    // read gets one whole timeout more, then is cut off, so a closed
    // connection cannot linger for ever.
    if (abort_next_) {
      transport()->abortConnection();
      return;
    }
    abort_next_ = true;
    timer_ = site_->reactor()->callLater(timeout, [this] { onTimeout(); });
    return;
  }
  absl::Duration wait = timeout;
  if (!in_progress_) {
    const absl::Duration idle = now() - last_input_;
    if (idle >= timeout) {
      if (parser_.midRequest()) {
        errorResponse(408);
      } else {
        dead_ = true;
        transport()->loseConnection();
      }
      abort_next_ = true;
      timer_ = site_->reactor()->callLater(timeout, [this] { onTimeout(); });
      return;
    }
    wait = timeout - idle;
  }
  timer_ = site_->reactor()->callLater(wait, [this] { onTimeout(); });
}

void HttpChannel::connectionLost(const absl::Status& reason) {
  lost_ = true;
  if (timer_.active()) timer_.cancel().IgnoreError();
  if (resume_call_.active()) resume_call_.cancel().IgnoreError();
  producer_ = nullptr;
  if (in_progress_ && !request_.finished_) request_.lost(reason);
}

}  // namespace twist
