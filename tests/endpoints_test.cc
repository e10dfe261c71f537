// Endpoint strings (serverFromString / clientFromString): the strings the
// parser accepts and what they mean, the ones it refuses and how it names
// the bad part; HappyEyeballs' order and stagger on a task::Clock; and
// HostnameEndpoint over real loopback sockets on every poller, with names
// answered by an injected resolver (never DNS).

#include "framework/endpoints.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/client_factory.h"
#include "framework/defer.h"
#include "framework/errors.h"
#include "framework/hostname_endpoint.h"
#include "framework/poller.h"
#include "framework/reactor.h"
#include "framework/task_clock.h"
#include "framework/tcp_port.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using Type = ServerEndpointSpec::Type;

// --- Tokenizing --------------------------------------------------------------

std::string Show(const EndpointArguments& a) {
  std::vector<std::string> parts;
  for (const std::string& s : a.args) parts.push_back(absl::StrCat("[", s, "]"));
  for (const auto& [k, v] : a.kwargs) parts.push_back(absl::StrCat(k, "=[", v, "]"));
  return absl::StrJoin(parts, " ");
}

TEST(EndpointArguments, TokenizeAsTwisted) {
  // Expectations from Twisted's _parse (twisted/internet/endpoints.py).
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tcp:80", "[tcp] [80]"},
      {"a:b:d=1:c", "[a] [b] [c] d=[1]"},
      {"tcp:80:interface=\\:\\:1", "[tcp] [80] interface=[::1]"},
      {"unix:/tmp/a\\:b.sock", "[unix] [/tmp/a:b.sock]"},
      {"x:k=a=b", "[x] k=[a=b]"},           // after '=', '=' is part of the value
      {"x:a\\=b", "[x] [a=b]"},             // an escaped '=' is no separator
      {"x:\\\\", "[x] [\\]"},               // an escaped backslash
      {"x::y", "[x] [] [y]"},               // an empty positional argument
      {"x:k=", "[x] k=[]"},                 // an empty value
      {"tcp", "[tcp]"},
  };
  for (const auto& [input, expected] : cases) {
    absl::StatusOr<EndpointArguments> a = ParseEndpointArguments(input);
    ASSERT_TRUE(a.ok()) << input << ": " << a.status();
    EXPECT_EQ(Show(*a), expected) << input;
  }
  EXPECT_THAT(ParseEndpointArguments("tcp:80\\").status().message(),
              ::testing::HasSubstr("ends in a lone backslash"));
}

// --- Server strings ----------------------------------------------------------

struct ServerCase {
  std::string input;
  Type type;
  int port;
  std::string interface;
  std::optional<int> backlog;
  std::string path;
  int mode;
  bool lockfile;
};

TEST(ServerEndpointSpec, AcceptsAndReads) {
  const std::vector<ServerCase> cases = {
      {"tcp:8000", Type::kTcp, 8000, "", std::nullopt, "", 0666, true},
      {"tcp:0", Type::kTcp, 0, "", std::nullopt, "", 0666, true},
      {"tcp:65535", Type::kTcp, 65535, "", std::nullopt, "", 0666, true},
      {"TCP:80", Type::kTcp, 80, "", std::nullopt, "", 0666, true},
      {"tcp:8000:interface=127.0.0.1", Type::kTcp, 8000, "127.0.0.1", std::nullopt, "", 0666, true},
      {"tcp:8000:interface=127.0.0.1:backlog=7", Type::kTcp, 8000, "127.0.0.1", 7, "", 0666, true},
      {"tcp:backlog=7:8000", Type::kTcp, 8000, "", 7, "", 0666, true},
      {"tcp:port=8000", Type::kTcp, 8000, "", std::nullopt, "", 0666, true},
      // Positional as Twisted's _parseTCP(port, interface, backlog).
      {"tcp:8000:127.0.0.1:9", Type::kTcp, 8000, "127.0.0.1", 9, "", 0666, true},
      {"tcp:8000:interface=\\:\\:1", Type::kTcp, 8000, "::1", std::nullopt, "", 0666, true},
      {"tcp:8000:interface=", Type::kTcp, 8000, "", std::nullopt, "", 0666, true},
      {"tcp6:8000", Type::kTcp6, 8000, "::", std::nullopt, "", 0666, true},
      {"tcp6:8000:interface=\\:\\:1", Type::kTcp6, 8000, "::1", std::nullopt, "", 0666, true},
      // Twisted's tcp6 order is (port, backlog, interface).
      {"tcp6:8000:5:\\:\\:1", Type::kTcp6, 8000, "::1", 5, "", 0666, true},
      {"unix:/tmp/echo.sock", Type::kUnix, 0, "", std::nullopt, "/tmp/echo.sock", 0666, true},
      {"unix:/tmp/echo.sock:mode=0600", Type::kUnix, 0, "", std::nullopt, "/tmp/echo.sock", 0600,
       true},
      {"unix:/tmp/echo.sock:mode=600:lockfile=0", Type::kUnix, 0, "", std::nullopt,
       "/tmp/echo.sock", 0600, false},
      {"unix:/tmp/e.sock:mode=0o640:lockfile=1:backlog=3", Type::kUnix, 0, "", 3, "/tmp/e.sock",
       0640, true},
      {"unix:address=/tmp/e.sock", Type::kUnix, 0, "", std::nullopt, "/tmp/e.sock", 0666, true},
      {"unix:@twist-echo", Type::kUnix, 0, "", std::nullopt, "@twist-echo", 0666, true},
      {"unix:/tmp/a\\:b", Type::kUnix, 0, "", std::nullopt, "/tmp/a:b", 0666, true},
      {"udp:9000", Type::kUdp, 9000, "", std::nullopt, "", 0666, true},
      {"udp:9000:interface=\\:\\:1", Type::kUdp, 9000, "::1", std::nullopt, "", 0666, true},
      {"udp:0:127.0.0.1", Type::kUdp, 0, "127.0.0.1", std::nullopt, "", 0666, true},
  };
  for (const ServerCase& c : cases) {
    absl::StatusOr<ServerEndpointSpec> s = ParseServerEndpoint(c.input);
    ASSERT_TRUE(s.ok()) << c.input << ": " << s.status();
    EXPECT_EQ(s->type, c.type) << c.input;
    EXPECT_EQ(s->port, c.port) << c.input;
    EXPECT_EQ(s->interface, c.interface) << c.input;
    EXPECT_EQ(s->backlog, c.backlog) << c.input;
    EXPECT_EQ(s->path, c.path) << c.input;
    EXPECT_EQ(s->mode, c.mode) << c.input;
    EXPECT_EQ(s->lockfile, c.lockfile) << c.input;
  }
  EXPECT_TRUE(ParseServerEndpoint("unix:@x")->abstract());
  EXPECT_FALSE(ParseServerEndpoint("unix:/x")->abstract());
  EXPECT_TRUE(ParseServerEndpoint("udp:1")->datagram());
  EXPECT_FALSE(ParseServerEndpoint("tcp:1")->datagram());
}

TEST(ServerEndpointSpec, RefusesAndNamesTheBadPart) {
  const std::string long_path(108, 'p');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty endpoint description"},
      {"tpc:8000", "unknown endpoint type 'tpc' (a server endpoint is tcp:, tcp6:, unix:, udp: or ssl:)"},
      {"8000", "unknown endpoint type '8000' (a server endpoint is tcp:, tcp6:, unix:, udp: or ssl:)"},
      // Without //protocols:tls_endpoints linked, as in this test.
      {"ssl:443", "ssl: endpoints need twist's TLS support, which this program does not link "
                  "(//protocols:tls_endpoints)"},
      {"tcp:70000", "port 70000 out of range (0..65535)"},
      {"tcp:-1", "port '-1' is not a number"},
      {"tcp:80x", "port '80x' is not a number"},
      {"tcp:", "port is empty"},
      {"tcp", "tcp endpoint needs a port (tcp:PORT[:interface=ADDR][:backlog=N])"},
      {"tcp:interface=127.0.0.1", "tcp endpoint needs a port (tcp:PORT[:interface=ADDR][:backlog=N])"},
      {"tcp:80:bogus=1",
       "unknown parameter 'bogus' for a tcp endpoint (tcp:PORT[:interface=ADDR][:backlog=N])"},
      {"tcp:80:127.0.0.1:5:extra",
       "unexpected argument 'extra' in a tcp endpoint (tcp:PORT[:interface=ADDR][:backlog=N])"},
      {"tcp:80:port=81", "parameter 'port' given twice"},
      {"tcp:80:interface=localhost",
       "interface 'localhost' is not a numeric IPv4 or IPv6 address"},
      {"tcp:80:backlog=0", "backlog '0' is not a number from 1 to 65535"},
      {"tcp:80:backlog=many", "backlog 'many' is not a number from 1 to 65535"},
      {"tcp6:80:interface=127.0.0.1", "interface '127.0.0.1' is not an IPv6 address (tcp6)"},
      {"tcp:80\\", "endpoint 'tcp:80\\' ends in a lone backslash"},
      {"unix:", "unix endpoint needs a path"},
      {"unix", "unix endpoint needs a path"},
      {"unix:@", "unix abstract name '@' is empty"},
      {"unix:" + long_path, "unix path '" + long_path + "' is longer than 107 bytes"},
      {"unix:/tmp/e:mode=999", "mode '999' is not an octal permission (0 to 0777, such as 0600)"},
      {"unix:/tmp/e:mode=01777", "mode '01777' is not an octal permission (0 to 0777, such as 0600)"},
      {"unix:/tmp/e:mode=", "mode '' is not an octal permission (0 to 0777, such as 0600)"},
      {"unix:/tmp/e:lockfile=yes", "lockfile 'yes' must be 0 or 1"},
      {"unix:/tmp/e:interface=1.2.3.4",
       "unknown parameter 'interface' for a unix endpoint "
       "(unix:PATH[:mode=0666][:lockfile=1][:backlog=N])"},
      {"udp:9000:backlog=5",
       "unknown parameter 'backlog' for a udp endpoint (udp:PORT[:interface=ADDR])"},
      {"udp:99999", "port 99999 out of range (0..65535)"},
  };
  for (const auto& [input, message] : cases) {
    absl::StatusOr<ServerEndpointSpec> s = ParseServerEndpoint(input);
    ASSERT_FALSE(s.ok()) << input;
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << input << ": " << s.status();
    EXPECT_EQ(s.status().message(), message) << input;
  }
}

// --- Client strings ----------------------------------------------------------

TEST(ClientEndpointSpec, AcceptsAndReads) {
  struct Case {
    std::string input;
    ClientEndpointSpec::Type type;
    std::string host;
    int port;
    std::optional<absl::Duration> timeout;
    std::string bind;
    std::string path;
  };
  const std::vector<Case> cases = {
      {"tcp:host=example.com:port=80", ClientEndpointSpec::Type::kTcp, "example.com", 80,
       std::nullopt, "", ""},
      {"tcp:example.com:80", ClientEndpointSpec::Type::kTcp, "example.com", 80, std::nullopt, "",
       ""},
      // Twisted's _parseClientTCP: one positional argument is the port
      // when host= is given, else the host.
      {"tcp:80:host=example.com", ClientEndpointSpec::Type::kTcp, "example.com", 80,
       std::nullopt, "", ""},
      {"tcp:example.com:port=80", ClientEndpointSpec::Type::kTcp, "example.com", 80,
       std::nullopt, "", ""},
      {"tcp:host=\\:\\:1:port=8000:timeout=2.5", ClientEndpointSpec::Type::kTcp, "::1", 8000,
       absl::Milliseconds(2500), "", ""},
      {"tcp:host=localhost:port=1:bindAddress=127.0.0.1", ClientEndpointSpec::Type::kTcp,
       "localhost", 1, std::nullopt, "127.0.0.1:0", ""},
      {"unix:path=/tmp/echo.sock", ClientEndpointSpec::Type::kUnix, "", 0, std::nullopt, "",
       "/tmp/echo.sock"},
      {"unix:/tmp/echo.sock:timeout=3", ClientEndpointSpec::Type::kUnix, "", 0, absl::Seconds(3),
       "", "/tmp/echo.sock"},
      {"unix:path=@name", ClientEndpointSpec::Type::kUnix, "", 0, std::nullopt, "", "@name"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ClientEndpointSpec> s = ParseClientEndpoint(c.input);
    ASSERT_TRUE(s.ok()) << c.input << ": " << s.status();
    EXPECT_EQ(s->type, c.type) << c.input;
    EXPECT_EQ(s->host, c.host) << c.input;
    EXPECT_EQ(s->port, c.port) << c.input;
    EXPECT_EQ(s->timeout, c.timeout) << c.input;
    EXPECT_EQ(s->bind_address.has_value() ? s->bind_address->ToString() : "", c.bind) << c.input;
    EXPECT_EQ(s->path, c.path) << c.input;
  }
}

TEST(ClientEndpointSpec, RefusesAndNamesTheBadPart) {
  const std::string usage = "(tcp:host=H:port=P[:timeout=S][:bindAddress=A])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tpc:host=a:port=1", "unknown endpoint type 'tpc' (a client endpoint is tcp:, unix: or tls:)"},
      {"udp:host=a:port=1", "unknown endpoint type 'udp' (a client endpoint is tcp:, unix: or tls:)"},
      {"tcp:port=80", "tcp client endpoint needs a host " + usage},
      {"tcp:host=:port=80", "tcp client endpoint needs a host " + usage},
      {"tcp:host=a", "tcp client endpoint needs a port " + usage},
      {"tcp:host=a:port=0", "port 0 out of range (1..65535)"},
      {"tcp:host=a:port=70000", "port 70000 out of range (1..65535)"},
      {"tcp:host=a:port=http", "port 'http' is not a number"},
      {"tcp:host=a:port=1:timeout=0", "timeout '0' is not a number of seconds above 0"},
      {"tcp:host=a:port=1:timeout=soon", "timeout 'soon' is not a number of seconds above 0"},
      {"tcp:host=a:port=1:bindAddress=eth0",
       "bindAddress 'eth0' is not a numeric IPv4 or IPv6 address"},
      {"tcp:host=a:port=1:interface=x", "unknown parameter 'interface' for a tcp client endpoint " + usage},
      {"tcp:a:1:2", "unexpected argument '2' in a tcp client endpoint " + usage},
      {"tcp:80:host=a:port=81", "parameter 'port' given twice"},
      {"unix:", "unix endpoint needs a path"},
      {"unix:path=/a:mode=0600",
       "unknown parameter 'mode' for a unix client endpoint (unix:path=P[:timeout=S])"},
  };
  for (const auto& [input, message] : cases) {
    absl::StatusOr<ClientEndpointSpec> s = ParseClientEndpoint(input);
    ASSERT_FALSE(s.ok()) << input;
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << input << ": " << s.status();
    EXPECT_EQ(s.status().message(), message) << input;
  }
}

// --- HappyEyeballs on a fake clock --------------------------------------------

Address A(const char* host, int port = 80) { return *Address::Parse(host, port); }

std::vector<std::string> Strings(const std::vector<Address>& v) {
  std::vector<std::string> out;
  for (const Address& a : v) out.push_back(a.ToString());
  return out;
}

TEST(HappyEyeballs, InterleavesFamiliesFirstFamilyFirst) {
  using ::testing::ElementsAre;
  EXPECT_THAT(Strings(HappyEyeballs::Interleave(
                  {A("10.0.0.1"), A("10.0.0.2"), A("10.0.0.3"), A("2001:db8::1"), A("2001:db8::2")})),
              ElementsAre("10.0.0.1:80", "[2001:db8::1]:80", "10.0.0.2:80", "[2001:db8::2]:80",
                          "10.0.0.3:80"));
  EXPECT_THAT(Strings(HappyEyeballs::Interleave(
                  {A("2001:db8::1"), A("2001:db8::2"), A("2001:db8::3"), A("10.0.0.1")})),
              ElementsAre("[2001:db8::1]:80", "10.0.0.1:80", "[2001:db8::2]:80",
                          "[2001:db8::3]:80"));
  // Repeats are dropped: a second attempt to the same place gains nothing.
  EXPECT_THAT(Strings(HappyEyeballs::Interleave({A("10.0.0.1"), A("::1"), A("10.0.0.1")})),
              ElementsAre("10.0.0.1:80", "[::1]:80"));
}

// Records what the race asks its hooks to do, with the fake time of each.
struct Race {
  task::Clock clock;
  std::vector<std::string> log;
  std::optional<absl::StatusOr<size_t>> result;
  int done_calls = 0;
  HappyEyeballs eyeballs{&clock, absl::Milliseconds(300),
                         HappyEyeballs::Hooks{
                             [this](size_t i, const Address& a) {
                               log.push_back(absl::StrCat(Now(), " start ", i, " ", a.ToString()));
                             },
                             [this](size_t i) { log.push_back(absl::StrCat(Now(), " cancel ", i)); },
                             [this](absl::StatusOr<size_t> w) {
                               ++done_calls;
                               result = w;
                               log.push_back(absl::StrCat(
                                   Now(), " done ", w.ok() ? absl::StrCat(*w) : w.status().message()));
                             },
                         }};
  int64_t Now() const { return absl::ToInt64Milliseconds(clock.seconds() - absl::UnixEpoch()); }
};

const std::vector<Address> kMixed = {A("10.0.0.1"), A("10.0.0.2"), A("2001:db8::1"),
                                     A("2001:db8::2")};

TEST(HappyEyeballs, StartsOneAddressEveryAttemptDelayInInterleavedOrder) {
  Race r;
  r.eyeballs.start(kMixed);
  r.clock.advance(absl::Milliseconds(299));
  EXPECT_THAT(r.log, ::testing::ElementsAre("0 start 0 10.0.0.1:80"));
  r.clock.advance(absl::Milliseconds(1));
  r.clock.advance(absl::Milliseconds(300));
  r.clock.advance(absl::Milliseconds(300));
  r.clock.advance(absl::Seconds(10));  // nothing left to start
  EXPECT_THAT(r.log, ::testing::ElementsAre("0 start 0 10.0.0.1:80",
                                            "300 start 1 [2001:db8::1]:80",
                                            "600 start 2 10.0.0.2:80",
                                            "900 start 3 [2001:db8::2]:80"));
  EXPECT_EQ(r.done_calls, 0);  // all still running
  EXPECT_EQ(r.clock.pendingCalls(), 0u);
}

TEST(HappyEyeballs, FirstSuccessWinsAndTheOthersAreCancelled) {
  Race r;
  r.eyeballs.start(kMixed);
  r.clock.advance(absl::Milliseconds(300));
  r.clock.advance(absl::Milliseconds(300));  // 0, 1, 2 running
  r.clock.advance(absl::Milliseconds(50));
  EXPECT_TRUE(r.eyeballs.succeeded(1));  // the IPv6 one, though started later
  EXPECT_FALSE(r.eyeballs.succeeded(0));  // too late: it was cancelled
  r.eyeballs.failed(2, absl::UnavailableError("late"));  // ignored
  r.clock.advance(absl::Seconds(10));  // and address 3 never starts
  EXPECT_THAT(r.log, ::testing::ElementsAre(
                         "0 start 0 10.0.0.1:80", "300 start 1 [2001:db8::1]:80",
                         "600 start 2 10.0.0.2:80", "650 cancel 0", "650 cancel 2", "650 done 1"));
  EXPECT_EQ(r.done_calls, 1);
  EXPECT_TRUE(r.eyeballs.finished());
}

TEST(HappyEyeballs, AFailureStartsTheNextAddressAtOnce) {
  Race r;
  r.eyeballs.start(kMixed);
  r.clock.advance(absl::Milliseconds(100));
  r.eyeballs.failed(0, absl::UnavailableError("refused 0"));  // at 100, not 300
  r.clock.advance(absl::Milliseconds(299));
  EXPECT_THAT(r.log, ::testing::ElementsAre("0 start 0 10.0.0.1:80",
                                            "100 start 1 [2001:db8::1]:80"));
  r.clock.advance(absl::Milliseconds(1));  // 300 after the last start
  EXPECT_THAT(r.log, ::testing::ElementsAre("0 start 0 10.0.0.1:80",
                                            "100 start 1 [2001:db8::1]:80",
                                            "400 start 2 10.0.0.2:80"));
}

TEST(HappyEyeballs, WhenAllFailTheLastFailureIsReported) {
  Race r;
  r.eyeballs.start(kMixed);
  r.clock.advance(absl::Milliseconds(300));
  r.clock.advance(absl::Milliseconds(300));
  r.clock.advance(absl::Milliseconds(300));  // all four running
  r.eyeballs.failed(2, absl::UnavailableError("refused 2"));
  r.eyeballs.failed(0, absl::DeadlineExceededError("timeout 0"));
  r.eyeballs.failed(3, absl::UnavailableError("unreachable 3"));
  EXPECT_EQ(r.done_calls, 0);
  r.eyeballs.failed(1, absl::UnavailableError("refused 1"));
  ASSERT_EQ(r.done_calls, 1);
  ASSERT_FALSE(r.result->ok());
  EXPECT_EQ(r.result->status().message(), "refused 1");
  EXPECT_EQ(r.log.back(), "900 done refused 1");
}

TEST(HappyEyeballs, OneAddressAndAbort) {
  Race r;
  r.eyeballs.start({A("::1")});
  r.clock.advance(absl::Seconds(5));
  r.eyeballs.abort(absl::CancelledError("stop"));
  r.eyeballs.abort(absl::CancelledError("again"));  // once is all
  EXPECT_THAT(r.log, ::testing::ElementsAre("0 start 0 [::1]:80", "5000 cancel 0",
                                            "5000 done stop"));
  EXPECT_EQ(r.done_calls, 1);
}

// --- HostnameEndpoint over loopback -------------------------------------------

// A port where a connect is refused while this lives: bound, not listening.
class RefusedPort {
 public:
  explicit RefusedPort(const char* host) {
    Address any = *Address::Parse(host, 0);
    fd_ = ::socket(any.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ >= 0 && ::bind(fd_, any.sockaddr_ptr(), any.length()) == 0) {
      address_ = *Address::LocalOf(fd_);
    } else if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RefusedPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  const Address& address() const { return address_; }

 private:
  int fd_ = -1;
  Address address_;
};

bool HaveIPv6Loopback() { return RefusedPort("::1").ok(); }

// Answers names from a table (never DNS); a closed gate holds look-ups.
class TableResolver {
 public:
  TableResolver() : s_(std::make_shared<State>()) {}
  void Answer(const std::string& host, std::vector<Address> addresses) {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->answers[host] = std::move(addresses);
  }
  void Close() {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->open = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      s_->open = true;
    }
    s_->cv.notify_all();
  }
  NameResolver resolver() const {
    return [s = s_](const std::string& host, int) -> absl::StatusOr<std::vector<Address>> {
      std::unique_lock<std::mutex> lock(s->mu);
      s->cv.wait_for(lock, std::chrono::seconds(30), [&] { return s->open; });
      auto it = s->answers.find(host);
      if (it == s->answers.end()) {
        return absl::NotFoundError(absl::StrCat("cannot resolve '", host, "': unknown"));
      }
      return it->second;
    };
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::vector<Address>> answers;
    bool open = true;
  };
  std::shared_ptr<State> s_;
};

struct Heard {
  std::vector<std::string> events;
  absl::Status failed;
  int built = 0;
  int starts = 0;
  int stops = 0;
  std::string received;
  Address peer;
  bool failed_connector_null = false;
  Factory* protocol_factory = nullptr;
};

// Sends "hello", closes once it is echoed.
class Hello : public Protocol {
 public:
  explicit Hello(Heard* h) : h_(h) {}
  void connectionMade() override {
    h_->events.push_back("made");
    h_->protocol_factory = factory();
    transport()->write("hello");
  }
  void dataReceived(absl::string_view data) override {
    h_->received.append(data.data(), data.size());
    if (h_->received.size() >= 5) transport()->loseConnection();
  }

 private:
  Heard* h_;
};

class HelloFactory : public ClientFactory {
 public:
  explicit HelloFactory(Heard* h) : h_(h) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override {
    ++h_->built;
    h_->peer = addr;
    return std::make_unique<Hello>(h_);
  }
  void startFactory() override { ++h_->starts; }
  void stopFactory() override { ++h_->stops; }
  void startedConnecting(Connector*) override { h_->events.push_back("started"); }
  void clientConnectionFailed(Connector* c, const absl::Status& reason) override {
    h_->events.push_back("failed");
    h_->failed = reason;
    h_->failed_connector_null = c == nullptr;
  }
  void clientConnectionLost(Connector*, const absl::Status&) override {
    h_->events.push_back("lost");
  }

 private:
  Heard* h_;
};

class HostnameEndpointTest : public testing::PollerTest {
 protected:
  std::unique_ptr<Reactor> ResolvingReactor(const TableResolver& table, Clock* clock = nullptr) {
    ReactorOptions options;
    options.poller = GetParam();
    options.clock = clock;
    options.resolver = table.resolver();
    absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
    if (!r.ok()) {
      ADD_FAILURE() << r.status();
      abort();
    }
    return *std::move(r);
  }
  Address ListenEcho(Reactor& reactor, const char* host = "127.0.0.1") {
    absl::StatusOr<Port*> port = reactor.listenTCP(0, echo_.get(), 64, host);
    EXPECT_TRUE(port.ok()) << port.status();
    return (*port)->getHost();
  }
  // An endpoint to a fresh echo server on 127.0.0.1, on `reactor`.
  HostnameEndpoint EchoEndpoint(Reactor& reactor) {
    return HostnameEndpoint(&reactor, "127.0.0.1", ListenEcho(reactor).port());
  }
  std::unique_ptr<Factory> echo_ = Factory::forProtocol<Echo>();
};

TEST_P(HostnameEndpointTest, ConnectsToANumericAddressAndEchoes) {
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = NewReactor();
  Address server = ListenEcho(*reactor);
  auto endpoint = clientFromString(reactor.get(), absl::StrCat("tcp:host=127.0.0.1:port=",
                                                               server.port()));
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  ASSERT_TRUE((*endpoint)->connect(&factory).ok());
  endpoint->reset();  // the attempt does not need its endpoint
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  EXPECT_THAT(heard.events, ::testing::ElementsAre("started", "made", "lost"));
  EXPECT_EQ(heard.received, "hello");
  EXPECT_EQ(heard.built, 1);
  EXPECT_EQ(heard.starts, 1);
  EXPECT_EQ(heard.protocol_factory, &factory);  // not the endpoint's own
  EXPECT_EQ(reactor->connectorCount(), 0u);
}

TEST_P(HostnameEndpointTest, RacesPastARefusedAddressToOneThatListens) {
  if (!HaveIPv6Loopback()) GTEST_SKIP() << "no IPv6 loopback (::1)";
  TableResolver table;
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = ResolvingReactor(table);
  RefusedPort refused("::1");
  ASSERT_TRUE(refused.ok());
  Address server = ListenEcho(*reactor);
  table.Answer("twist.test", {refused.address(), server});
  HostnameEndpoint endpoint(reactor.get(), "twist.test", 1);
  ASSERT_TRUE(endpoint.connect(&factory).ok());
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  EXPECT_THAT(heard.events, ::testing::ElementsAre("started", "made", "lost"));
  EXPECT_EQ(heard.peer, server);
  EXPECT_EQ(heard.received, "hello");
}

TEST_P(HostnameEndpointTest, WhenEveryAddressFailsTheLastFailureIsReported) {
  TableResolver table;
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = ResolvingReactor(table);
  RefusedPort first("127.0.0.1"), last("127.0.0.1");
  ASSERT_TRUE(first.ok() && last.ok());
  table.Answer("twist.test", {first.address(), last.address()});
  HostnameEndpoint endpoint(reactor.get(), "twist.test", 1);
  ASSERT_TRUE(endpoint.connect(&factory).ok());
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  EXPECT_THAT(heard.events, ::testing::ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectionRefused(heard.failed)) << heard.failed;
  EXPECT_THAT(std::string(heard.failed.message()),
              ::testing::HasSubstr(last.address().ToString()));
  EXPECT_EQ(heard.built, 0);
  // Every connector is gone, and so is the attempt (ASan would see it leak).
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return reactor->connectorCount() == 0; }));
}

TEST_P(HostnameEndpointTest, ANameThatDoesNotResolveFailsWithoutAConnector) {
  TableResolver table;
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = ResolvingReactor(table);
  HostnameEndpoint endpoint(reactor.get(), "nowhere.test", 80);
  ASSERT_TRUE(endpoint.connect(&factory).ok());
  EXPECT_TRUE(heard.events.empty());  // nothing inside connect()
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  EXPECT_THAT(heard.events, ::testing::ElementsAre("failed"));
  EXPECT_TRUE(IsDNSLookupError(heard.failed)) << heard.failed;
  EXPECT_TRUE(heard.failed_connector_null);
}

TEST_P(HostnameEndpointTest, ResolutionIsBoundedByTheTimeout) {
  TableResolver table;
  table.Close();  // the look-up hangs
  FakeClock clock;
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = ResolvingReactor(table, &clock);
  HostnameEndpoint endpoint(reactor.get(), "slow.test", 80, absl::Seconds(5));
  ASSERT_TRUE(endpoint.connect(&factory).ok());
  Spin(*reactor);
  EXPECT_TRUE(heard.events.empty());
  clock.advance(absl::Seconds(5));
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  table.Open();
  EXPECT_THAT(heard.events, ::testing::ElementsAre("failed"));
  EXPECT_TRUE(IsConnectTimeout(heard.failed)) << heard.failed;
}

TEST_P(HostnameEndpointTest, DestroyingTheReactorWhileResolvingEndsTheAttemptOnce) {
  TableResolver table;
  table.Close();
  Heard heard;
  HelloFactory factory(&heard);
  {
    auto reactor = ResolvingReactor(table);
    HostnameEndpoint endpoint(reactor.get(), "slow.test", 80);
    ASSERT_TRUE(endpoint.connect(&factory).ok());
    Spin(*reactor);
  }
  table.Open();
  EXPECT_THAT(heard.events, ::testing::ElementsAre("failed"));
  EXPECT_TRUE(IsConnectCancelled(heard.failed)) << heard.failed;
  EXPECT_EQ(heard.stops, 1);
}

TEST_P(HostnameEndpointTest, StoppingTheReactorWhileConnectingEndsTheAttemptOnce) {
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = NewReactor();
  HostnameEndpoint endpoint = EchoEndpoint(*reactor);
  reactor->callWhenRunning([&] {
    ASSERT_TRUE(endpoint.connect(&factory).ok());
    reactor->stop();  // before the handshake is seen
  });
  reactor->run();
  EXPECT_EQ(heard.stops, 1);
  ASSERT_EQ(heard.events.size(), 2u) << absl::StrJoin(heard.events, ",");
  EXPECT_EQ(heard.events[0], "started");
  EXPECT_EQ(heard.events[1], "failed");
  EXPECT_TRUE(IsConnectCancelled(heard.failed)) << heard.failed;
}

// --- Twisted's style: connect() gives a Deferred; cancelling stops it -----------

// A plain Factory (not a ClientFactory) picks ClientEndpoint's Deferred style.
std::unique_ptr<Factory> PlainHello(Heard* heard) {
  return std::make_unique<Factory>([heard]() -> std::unique_ptr<Protocol> {
    ++heard->built;
    return std::make_unique<Hello>(heard);
  });
}

TEST_P(HostnameEndpointTest, TheDeferredFiresWithTheProtocolOnceConnectionMadeHasRun) {
  Heard heard;
  auto plain = PlainHello(&heard);
  auto reactor = NewReactor();
  HostnameEndpoint endpoint = EchoEndpoint(*reactor);
  Deferred<Protocol*> d = endpoint.connect(plain.get());
  EXPECT_FALSE(d.called());  // never inside connect()
  Protocol* got = nullptr;
  std::vector<std::string> events_then;
  bool had_transport = false;
  d.addCallback([&](Protocol* p) {
    got = p;
    events_then = heard.events;
    had_transport = p->transport() != nullptr;
    return p;
  });
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return got != nullptr; }));
  EXPECT_THAT(events_then, ::testing::ElementsAre("made"));
  EXPECT_TRUE(had_transport);
  EXPECT_NE(dynamic_cast<Hello*>(got), nullptr) << "the user's protocol, not a wrapper";
  EXPECT_EQ(heard.protocol_factory, plain.get());
  // The connection works as any other: "hello" comes back, Hello closes.
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return reactor->connectionCount() == 0; }));
  EXPECT_EQ(heard.received, "hello");
  EXPECT_EQ(heard.built, 1);
}

TEST_P(HostnameEndpointTest, TheDeferredFailsWithWhyTheAttemptFailed) {
  RefusedPort refused("127.0.0.1");
  ASSERT_TRUE(refused.ok());
  Heard heard;
  auto plain = PlainHello(&heard);
  auto reactor = NewReactor();
  HostnameEndpoint endpoint(reactor.get(), "127.0.0.1", refused.address().port());
  Deferred<Protocol*> d = endpoint.connect(plain.get());
  absl::Status failed;
  d.addErrback([&](const absl::Status& s) -> absl::StatusOr<Protocol*> {
    failed = s;
    return nullptr;  // handled
  });
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return !failed.ok(); }));
  EXPECT_TRUE(IsConnectionRefused(failed)) << failed;
  EXPECT_EQ(heard.built, 0);
}

TEST_P(HostnameEndpointTest, AFactoryThatBuildsNothingFailsTheDeferred) {
  auto reactor = NewReactor();
  Address server = ListenEcho(*reactor);
  Factory refuses([]() -> std::unique_ptr<Protocol> { return nullptr; });
  HostnameEndpoint endpoint(reactor.get(), "127.0.0.1", server.port());
  Deferred<Protocol*> d = endpoint.connect(&refuses);
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return d.result() != nullptr; }));
  ASSERT_FALSE(d.result()->ok());
  EXPECT_THAT(std::string(d.result()->status().message()),
              ::testing::HasSubstr("the factory built no protocol"));
  EXPECT_TRUE(IsNoProtocol(d.result()->status())) << d.result()->status();
  d.addErrback([](const absl::Status&) -> absl::StatusOr<Protocol*> { return nullptr; });
}

TEST(NoProtocolTest, IsTheFactorysRefusalAndNoOtherFailedPrecondition) {
  EXPECT_TRUE(IsNoProtocol(NoProtocol("127.0.0.1:80")));
  EXPECT_FALSE(IsNoProtocol(absl::FailedPreconditionError("the reactor is stopping")));
  EXPECT_FALSE(IsNoProtocol(ConnectCancelled("127.0.0.1:80")));
  EXPECT_FALSE(IsConnectCancelled(NoProtocol("127.0.0.1:80")));
}

TEST_P(HostnameEndpointTest, CancellingTheDeferredWhileResolvingFailsItAtOnce) {
  TableResolver table;
  table.Close();
  Heard heard;
  auto plain = PlainHello(&heard);
  auto reactor = ResolvingReactor(table);
  HostnameEndpoint endpoint(reactor.get(), "slow.test", 80);
  Deferred<Protocol*> d = endpoint.connect(plain.get());
  Spin(*reactor);
  ASSERT_FALSE(d.called());
  d.cancel();
  // As Twisted's: the errback runs inside cancel(), naming the endpoint.
  ASSERT_NE(d.result(), nullptr);
  EXPECT_TRUE(IsConnectCancelled(d.result()->status())) << d.result()->status();
  EXPECT_THAT(std::string(d.result()->status().message()), ::testing::HasSubstr("slow.test"));
  d.addErrback([](const absl::Status&) -> absl::StatusOr<Protocol*> { return nullptr; });
  table.Open();  // the look-up may go on; nothing is built from its answer
  table.Answer("slow.test", {*Address::Parse("127.0.0.1", 1)});
  Spin(*reactor);
  EXPECT_EQ(heard.built, 0);
  EXPECT_EQ(reactor->connectorCount(), 0u);
}

TEST_P(HostnameEndpointTest, CancellingWhileResolvingTellsTheFactoryOnALaterTurn) {
  TableResolver table;
  table.Close();
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = ResolvingReactor(table);
  HostnameEndpoint endpoint(reactor.get(), "slow.test", 80);
  absl::StatusOr<ConnectingAttempt> attempt = endpoint.connect(&factory);
  ASSERT_TRUE(attempt.ok()) << attempt.status();
  Spin(*reactor);
  EXPECT_TRUE(attempt->cancel());
  EXPECT_TRUE(heard.events.empty()) << "told inside cancel()";
  EXPECT_FALSE(attempt->cancel()) << "a second cancel() has nothing to stop";
  // Told while the look-up is still held: the cancel does not wait for it.
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  EXPECT_THAT(heard.events, ::testing::ElementsAre("failed"));
  EXPECT_TRUE(IsConnectCancelled(heard.failed)) << heard.failed;
  EXPECT_EQ(heard.starts, 1);
  table.Open();
  Spin(*reactor);
  EXPECT_THAT(heard.events, ::testing::ElementsAre("failed"));
}

TEST_P(HostnameEndpointTest, CancellingWhileConnectingStopsEveryAddress) {
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = NewReactor();
  HostnameEndpoint endpoint = EchoEndpoint(*reactor);
  absl::StatusOr<ConnectingAttempt> attempt = endpoint.connect(&factory);
  ASSERT_TRUE(attempt.ok());
  ASSERT_EQ(reactor->connectorCount(), 1u) << "the address's attempt is under way";
  EXPECT_TRUE(attempt->cancel());  // before any loop turn saw the handshake
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  Spin(*reactor);
  EXPECT_EQ(std::count(heard.events.begin(), heard.events.end(), "failed"), 1);
  EXPECT_EQ(heard.events.back(), "failed");
  EXPECT_TRUE(IsConnectCancelled(heard.failed)) << heard.failed;
  EXPECT_EQ(heard.built, 0);
  EXPECT_EQ(reactor->connectorCount(), 0u);
}

TEST_P(HostnameEndpointTest, CancellingOnceConnectedDoesNothing) {
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = NewReactor();
  HostnameEndpoint endpoint = EchoEndpoint(*reactor);
  absl::StatusOr<ConnectingAttempt> attempt = endpoint.connect(&factory);
  ASSERT_TRUE(attempt.ok());
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.built == 1; }));
  EXPECT_FALSE(attempt->cancel());
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  EXPECT_THAT(heard.events, ::testing::ElementsAre("started", "made", "lost"));
  EXPECT_EQ(heard.received, "hello");
  EXPECT_FALSE(attempt->cancel()) << "the attempt is over";
}

// The report of a cancel still waiting for its turn when the reactor is
// destroyed is delivered then, once; nothing leaks (ASan).
TEST_P(HostnameEndpointTest, DestroyingTheReactorRightAfterACancelTellsOnce) {
  TableResolver table;
  table.Close();
  Heard resolving, connecting;
  HelloFactory to_resolving(&resolving), to_connecting(&connecting);
  auto plain_heard = std::make_unique<Heard>();
  auto plain = PlainHello(plain_heard.get());
  absl::Status deferred_failure;
  {
    auto reactor = ResolvingReactor(table);
    Address server = ListenEcho(*reactor);
    HostnameEndpoint slow(reactor.get(), "slow.test", 80);
    HostnameEndpoint numeric(reactor.get(), "127.0.0.1", server.port());
    absl::StatusOr<ConnectingAttempt> a = slow.connect(&to_resolving);
    absl::StatusOr<ConnectingAttempt> b = numeric.connect(&to_connecting);
    Deferred<Protocol*> c = slow.connect(plain.get());
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(a->cancel());
    EXPECT_TRUE(b->cancel());
    c.cancel();
    c.addErrback([&](const absl::Status& s) -> absl::StatusOr<Protocol*> {
      deferred_failure = s;
      return nullptr;
    });
  }
  table.Open();
  for (Heard* h : {&resolving, &connecting}) {
    EXPECT_EQ(std::count(h->events.begin(), h->events.end(), "failed"), 1);
    EXPECT_TRUE(IsConnectCancelled(h->failed)) << h->failed;
    EXPECT_EQ(h->stops, 1);
    EXPECT_EQ(h->built, 0);
  }
  EXPECT_TRUE(IsConnectCancelled(deferred_failure)) << deferred_failure;
}

// A client factory that records its callbacks and builds protocols that
// keep their connection open.
class Holding : public ClientFactory {
 public:
  explicit Holding(Heard* h) : h_(h) {}
  std::unique_ptr<Protocol> buildProtocol(const Address&) override {
    ++h_->built;
    return std::make_unique<Protocol>();
  }
  void clientConnectionLost(Connector*, const absl::Status&) override {
    h_->events.push_back("lost");
  }
  void stopFactory() override { ++h_->stops; }

 private:
  Heard* h_;
};

// Declared after the reactor (the natural order in main()), the factories
// go first; closing their connections then calls none of them, as a port
// does not call a factory that is gone (ASan: no use after free).
TEST_P(HostnameEndpointTest, AClientFactoryGoneBeforeTheReactorIsNotCalled) {
  auto reactor = NewReactor();
  Address server = ListenEcho(*reactor);
  Heard tcp, callbacks, deferred;
  {
    Holding by_connect_tcp(&tcp), by_callbacks(&callbacks);
    Factory plain([&] {
      ++deferred.built;
      return std::make_unique<Protocol>();
    });
    HostnameEndpoint endpoint(reactor.get(), "127.0.0.1", server.port());
    reactor->connectTCP("127.0.0.1", server.port(), &by_connect_tcp);
    ASSERT_TRUE(endpoint.connect(&by_callbacks).ok());
    Deferred<Protocol*> d = endpoint.connect(&plain);
    ASSERT_TRUE(testing::RunUntil(
        *reactor, [&] { return d.called() && tcp.built == 1 && callbacks.built == 1; }));
    ASSERT_EQ(reactor->connectionCount(), 6u);  // three clients, three served
  }
  reactor.reset();  // aborts the connections
  for (Heard* h : {&tcp, &callbacks}) {
    EXPECT_TRUE(h->events.empty()) << absl::StrJoin(h->events, ",");
    EXPECT_EQ(h->stops, 0);
  }
  EXPECT_EQ(deferred.built, 1);
}

TEST_P(HostnameEndpointTest, ConnectProtocolConnectsTheGivenProtocol) {
  Heard heard;
  auto reactor = NewReactor();
  HostnameEndpoint endpoint = EchoEndpoint(*reactor);
  auto hello = std::make_unique<Hello>(&heard);
  Hello* expected = hello.get();
  Deferred<Hello*> d = connectProtocol(endpoint, std::move(hello));
  Hello* got = nullptr;
  d.addCallback([&](Hello* p) {
    got = p;
    return p;
  });
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return got != nullptr; }));
  EXPECT_EQ(got, expected);
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return reactor->connectionCount() == 0; }));
  EXPECT_EQ(heard.received, "hello");
}

INSTANTIATE_TEST_SUITE_P(Pollers, HostnameEndpointTest, ::testing::ValuesIn(PollerNames()));

// --- Unix endpoints, both ends ----------------------------------------------------

class UnixEndpointTest : public testing::PollerTest {};

TEST_P(UnixEndpointTest, ListensAndConnectsOnAPathAndAnAbstractName) {
  testing::SocketDir dir;
  const std::string path = dir.path("endpoint.sock");
  const std::string abstract = testing::SocketDir::AbstractName("endpoint");
  auto echo = Factory::forProtocol<Echo>();
  Heard heard_path, heard_abstract;
  HelloFactory to_path(&heard_path), to_abstract(&heard_abstract);
  auto reactor = NewReactor();
  for (const std::string& where : {path, abstract}) {
    auto server = serverFromString(reactor.get(), "unix:" + where + ":mode=0600");
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<ListeningPort> port = (*server)->listen(echo.get());
    ASSERT_TRUE(port.ok()) << where << ": " << port.status();
    EXPECT_EQ(port->describe(), "unix:" + where);
  }
  auto client_path = clientFromString(reactor.get(), "unix:path=" + path + ":timeout=5");
  auto client_abstract = clientFromString(reactor.get(), "unix:" + abstract);
  ASSERT_TRUE(client_path.ok() && client_abstract.ok());
  ASSERT_TRUE((*client_path)->connect(&to_path).ok());
  ASSERT_TRUE((*client_abstract)->connect(&to_abstract).ok());
  ASSERT_TRUE(testing::RunUntil(
      *reactor, [&] { return heard_path.stops == 1 && heard_abstract.stops == 1; }));
  for (Heard* h : {&heard_path, &heard_abstract}) {
    EXPECT_THAT(h->events, ::testing::ElementsAre("started", "made", "lost"));
    EXPECT_EQ(h->received, "hello");
  }
}

TEST_P(UnixEndpointTest, NobodyListeningIsARefusedConnection) {
  testing::SocketDir dir;
  Heard heard;
  HelloFactory factory(&heard);
  auto reactor = NewReactor();
  auto client = clientFromString(reactor.get(), "unix:" + dir.path("nobody.sock"));
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->connect(&factory).ok());
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return heard.stops == 1; }));
  EXPECT_THAT(heard.events, ::testing::ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectionRefused(heard.failed)) << heard.failed;
}

TEST_P(UnixEndpointTest, TheDeferredStyleConnectsAndCancels) {
  testing::SocketDir dir;
  const std::string path = dir.path("deferred.sock");
  auto echo = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  ASSERT_TRUE(reactor->listenUNIX(path, echo.get()).ok());
  auto client = clientFromString(reactor.get(), "unix:" + path);
  ASSERT_TRUE(client.ok());
  Heard heard;
  auto plain = PlainHello(&heard);
  Deferred<Protocol*> d = (*client)->connect(plain.get());
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return d.result() != nullptr; }));
  ASSERT_TRUE(d.result()->ok()) << d.result()->status();
  EXPECT_NE(dynamic_cast<Hello*>(**d.result()), nullptr);
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return reactor->connectionCount() == 0; }));
  EXPECT_EQ(heard.received, "hello");

  // Cancelled before a loop turn: the factory is told once, later.
  Heard cancelled;
  HelloFactory factory(&cancelled);
  absl::StatusOr<ConnectingAttempt> attempt = (*client)->connect(&factory);
  ASSERT_TRUE(attempt.ok());
  EXPECT_TRUE(attempt->cancel());
  EXPECT_THAT(cancelled.events, ::testing::ElementsAre("started"));
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return cancelled.stops == 1; }));
  EXPECT_THAT(cancelled.events, ::testing::ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectCancelled(cancelled.failed)) << cancelled.failed;
  EXPECT_EQ(cancelled.built, 0);
  EXPECT_FALSE(attempt->cancel());
}

INSTANTIATE_TEST_SUITE_P(Pollers, UnixEndpointTest, ::testing::ValuesIn(PollerNames()));

// --- Server endpoints ----------------------------------------------------------

TEST(ServerEndpoint, ListensOnTcpAndTcp6AndSaysWhere) {
  auto reactor = testing::MakeReactor("epoll");
  auto factory = Factory::forProtocol<Echo>();
  auto tcp = serverFromString(reactor.get(), "tcp:0:interface=127.0.0.1");
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_FALSE((*tcp)->datagram());
  absl::StatusOr<ListeningPort> port = (*tcp)->listen(factory.get());
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(port->describe(), absl::StrCat("127.0.0.1:", port->stream()->getHost().port()));
  EXPECT_TRUE(absl::IsInvalidArgument((*tcp)->listenDatagram(nullptr).status()));
  if (HaveIPv6Loopback()) {
    auto tcp6 = serverFromString(reactor.get(), "tcp6:0:interface=\\:\\:1");
    ASSERT_TRUE(tcp6.ok()) << tcp6.status();
    absl::StatusOr<ListeningPort> port6 = (*tcp6)->listen(factory.get());
    ASSERT_TRUE(port6.ok()) << port6.status();
    EXPECT_EQ(port6->describe(), absl::StrCat("[::1]:", port6->stream()->getHost().port()));
  }
  auto udp = serverFromString(reactor.get(), "udp:0:interface=127.0.0.1");
  ASSERT_TRUE(udp.ok()) << udp.status();
  EXPECT_TRUE((*udp)->datagram());
  EXPECT_TRUE(absl::IsInvalidArgument((*udp)->listen(factory.get()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(serverFromString(reactor.get(), "tpc:0").status()));
}

}  // namespace
}  // namespace twist
