// Opens many connections to an echo server at once, sends messages on each
// and checks every byte that comes back.
//
//   ./tools/bazel run //examples:echo_client -- --port=8000 --connections=2000
//
// prints one line:
//   connections=2000 messages=20000 bytes=1280000 errors=0 seconds=0.41
// and exits 0 when every byte came back, 1 otherwise (2 on a bad flag).

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/usage.h"
#include "framework/client_factory.h"
#include "framework/endpoints.h"
#include "framework/errors.h"
#include "framework/reactor.h"
#include "framework/tcp_connector.h"
#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1",
              "Echo server: a numeric IPv4/IPv6 address, or a name (resolved on 4 "
              "threads however many connections; every address it has is tried).");
DEFINE_int32(port, 8000, "Echo server port, 1..65535.");
DEFINE_int32(connections, 1, "Connections open at the same time.");
DEFINE_int32(messages, 10, "Messages sent on each connection, one at a time.");
DEFINE_int32(size, 64, "Bytes per message.");
DEFINE_string(reactor, "epoll", "How to wait for sockets: epoll, poll or select.");
DEFINE_string(connect, "",
              "Endpoint to connect to, instead of --host/--port: "
              "tcp:host=H:port=P[:timeout=S][:bindAddress=A] (every address of H "
              "raced, IPv6 and IPv4, 0.3 s apart), unix:path=P[:timeout=S], or "
              "tls:host=H:port=P[:caCertsFile=CA.pem] (TLS; the server's certificate "
              "must name H). "
              "Its timeout= overrides --timeout.");
DEFINE_double(timeout, 10,
              "Seconds to wait for each connection to be made, name resolution included.");

namespace twist {
namespace {

// What all the connections add up to.
struct Totals {
  int connected = 0;
  int finished = 0;  // connections that got all their echoes (or failed)
  int64_t messages = 0;
  int64_t bytes = 0;
  int errors = 0;
  absl::Status first_failure;
  std::vector<Transport*> open;  // held until every connection is done
};

// Message m on connection c: every byte depends on both, so a byte from
// another connection or another message shows.
std::string Payload(int connection, int message, int size) {
  std::string p(static_cast<size_t>(size), '\0');
  uint32_t x = static_cast<uint32_t>(connection) * 2654435761u +
               static_cast<uint32_t>(message) * 40503u + 1;
  for (int i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    p[i] = static_cast<char>(x >> 24);
  }
  return p;
}

class EchoChecker : public Protocol {
 public:
  EchoChecker(int id, Totals* totals, absl::AnyInvocable<void()> on_done)
      : id_(id), totals_(totals), on_done_(std::move(on_done)) {}

  void connectionMade() override {
    ++totals_->connected;
    totals_->open.push_back(transport());
    if (auto* tcp = dynamic_cast<TcpTransport*>(transport())) {
      tcp->setTcpNoDelay(true).IgnoreError();  // not for a Unix socket
    }
    sendNext();
  }
  void dataReceived(absl::string_view data) override {
    if (done_) return;
    got_.append(data.data(), data.size());
    if (got_.size() > expected_.size() || expected_.compare(0, got_.size(), got_) != 0) {
      // A wrong byte: this connection is in error; it stops here.
      ++totals_->errors;
      size_t at = 0;
      while (at < got_.size() && at < expected_.size() && got_[at] == expected_[at]) ++at;
      recordFailure(absl::DataLossError(absl::StrCat(
          "connection ", id_ + 1, ": echo of message ", sent_ + 1, " differs at byte ", at)));
      finish();
      return;
    }
    if (got_.size() < expected_.size()) return;
    ++totals_->messages;
    totals_->bytes += static_cast<int64_t>(got_.size());
    if (++sent_ == FLAGS_messages) {
      finish();
    } else {
      sendNext();
    }
  }
  void connectionLost(const absl::Status& reason) override {
    if (!done_) {
      ++totals_->errors;  // closed before all of our echoes came back
      // Connections are numbered from 1, like messages.
      recordFailure(reason.ok()
                        ? absl::DataLossError(absl::StrCat(
                              "connection ", id_ + 1, " closed by the server after ",
                              sent_, " of ", FLAGS_messages, " echoes"))
                        : absl::Status(reason.code(), absl::StrCat("connection ", id_ + 1,
                                                                   ": ", reason.message())));
      finish();
    }
    auto& open = totals_->open;
    open.erase(std::remove(open.begin(), open.end(), transport()), open.end());
  }

 private:
  void sendNext() {
    expected_ = Payload(id_, sent_, FLAGS_size);
    got_.clear();
    transport()->write(expected_);
  }
  void recordFailure(absl::Status s) {
    if (totals_->first_failure.ok()) totals_->first_failure = std::move(s);
  }
  void finish() {
    done_ = true;
    ++totals_->finished;
    on_done_();
  }

  int id_;
  Totals* totals_;
  absl::AnyInvocable<void()> on_done_;
  std::string expected_, got_;
  int sent_ = 0;
  bool done_ = false;
};

class EchoClientFactory : public ClientFactory {
 public:
  EchoClientFactory(Reactor* reactor, Totals* totals) : reactor_(reactor), totals_(totals) {}
  std::unique_ptr<Protocol> buildProtocol(const Address&) override {
    return std::make_unique<EchoChecker>(next_id_++, totals_, [this] { checkDone(); });
  }
  void clientConnectionFailed(Connector*, const absl::Status& reason) override {
    ++totals_->errors;
    ++totals_->finished;
    ++failed_;
    if (totals_->first_failure.ok()) totals_->first_failure = reason;
    checkDone();
  }
  int failed() const { return failed_; }

 private:
  void checkDone() {
    if (totals_->finished < FLAGS_connections) return;
    // Everyone is done: only now close, so that all N were open at once.
    std::vector<Transport*> open = totals_->open;
    for (Transport* t : open) t->loseConnection();
    reactor_->callLater(absl::ZeroDuration(), [r = reactor_] { r->stop(); });
  }

  Reactor* reactor_;
  Totals* totals_;
  int next_id_ = 0;
  int failed_ = 0;
};

constexpr char kProgram[] = "echo_client";

// A bad flag: one line, exit 2.
int BadUsage(absl::string_view problem) { return twist::BadUsage(kProgram, problem); }
// Anything else that stops the run before its summary: one line, exit 1.
int Fail(absl::string_view problem) { return twist::Fail(kProgram, problem); }

int Main() {
  // --connect, parsed before anything starts; a bad one is bad usage.
  std::optional<ClientEndpointSpec> endpoint_spec;
  if (!FLAGS_connect.empty()) {
    if (!gflags::GetCommandLineFlagInfoOrDie("host").is_default ||
        !gflags::GetCommandLineFlagInfoOrDie("port").is_default) {
      return BadUsage("--host/--port and --connect both name the server: use one or the other");
    }
    absl::StatusOr<ClientEndpointSpec> spec = ParseClientEndpoint(FLAGS_connect);
    if (!spec.ok()) {
      return BadUsage(absl::StrCat("--connect=", FLAGS_connect, ": ", spec.status().message()));
    }
    // The endpoint's own timeout= wins; else --timeout.
    if (!spec->timeout.has_value()) spec->timeout = absl::Seconds(FLAGS_timeout);
    endpoint_spec = *std::move(spec);
  } else if (FLAGS_port < 1 || FLAGS_port > 65535) {
    return BadUsage(absl::StrCat("invalid --port ", FLAGS_port, ": must be 1..65535"));
  }
  if (FLAGS_connections < 1 || FLAGS_messages < 1 || FLAGS_size < 1) {
    return BadUsage("--connections, --messages and --size must be at least 1");
  }
  if (!(FLAGS_timeout > 0)) return BadUsage("--timeout must be more than 0 seconds");
  // Each connection is a descriptor: use all the system allows, and say so
  // up front when that is not enough.
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
    if (static_cast<rlim_t>(FLAGS_connections) + 16 > files.rlim_cur) {
      return Fail(absl::StrCat("--connections=", FLAGS_connections,
                               " needs more descriptors than the open-file limit (",
                               files.rlim_cur, ")"));
    }
  }
  ReactorOptions options;
  options.poller = FLAGS_reactor;
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
  if (!reactor.ok()) return BadUsage(absl::StrCat("--reactor: ", reactor.status().message()));
  if (absl::Status s = (*reactor)->installSignalHandlers(); !s.ok()) {
    return Fail(s.message());
  }
  Totals totals;
  EchoClientFactory factory(reactor->get(), &totals);
  const absl::Time start = absl::Now();
  std::unique_ptr<ClientEndpoint> endpoint;
  if (endpoint_spec.has_value()) endpoint = clientFromSpec(reactor->get(), *endpoint_spec);
  for (int i = 0; i < FLAGS_connections; ++i) {
    if (endpoint != nullptr) {
      if (auto attempt = endpoint->connect(&factory); !attempt.ok()) {
        return Fail(attempt.status().message());
      }
    } else {
      (*reactor)->connectTCP(FLAGS_host, FLAGS_port, &factory,
                             absl::Seconds(FLAGS_timeout));
    }
  }
  // Progress, for a person watching a long run.
  const bool show_progress = isatty(STDERR_FILENO);
  std::function<void()> tick = [&] {
    fprintf(stderr, "\rconnected=%d done=%d messages=%lld errors=%d   ",
            totals.connected, totals.finished,
            static_cast<long long>(totals.messages), totals.errors);
    (*reactor)->callLater(absl::Seconds(1), tick);
  };
  if (show_progress) (*reactor)->callLater(absl::Seconds(1), tick);
  (*reactor)->run();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (show_progress && seconds >= 1) fprintf(stderr, "\n");
  if (factory.failed() == FLAGS_connections) {
    // Not one connection: a single clear line instead of a summary.
    return Fail(totals.first_failure.message());
  }
  if (totals.finished < FLAGS_connections) {
    // Interrupted (SIGINT/SIGTERM) before every connection was done.
    totals.errors += FLAGS_connections - totals.finished;
  }
  printf("connections=%d messages=%lld bytes=%lld errors=%d seconds=%.2f\n",
         FLAGS_connections, static_cast<long long>(totals.messages),
         static_cast<long long>(totals.bytes), totals.errors, seconds);
  if (totals.errors > 0 && !totals.first_failure.ok()) {
    fprintf(stderr, "echo_client: first failure: %s\n",
            std::string(totals.first_failure.message()).c_str());
  }
  return totals.errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace twist

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Echo client: opens --connections connections to an echo server at once,\n"
      "sends --messages messages of --size bytes on each (a distinct payload per\n"
      "connection), checks every echoed byte and prints one summary line.\n"
      "Usage: echo_client [--host=127.0.0.1] --port=8000 [--connections=N]\n"
      "                   [--messages=M] [--size=S] [--reactor=epoll] [--timeout=10]\n"
      "       echo_client --connect=ENDPOINT [...] (tcp:host=H:port=P, unix:path=P,\n"
      "                   tls:host=H:port=P:caCertsFile=CA.pem)");
  if (absl::Status s = twist::ParseFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage("echo_client", s.message());
  }
  return twist::Main();
}
