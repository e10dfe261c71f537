// The same traffic gives a protocol the same callbacks in the same order,
// whichever poller the reactor runs on.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "framework/errors.h"
#include "framework/poller.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;
using testing::BlockingClient;
using testing::RunUntil;

// Records every callback; answers a half-close with "bye" and a close.
class Tracer : public Protocol, public HalfCloseableProtocol {
 public:
  Tracer(std::vector<std::string>* trace, int* gone) : trace_(trace), gone_(gone) {}
  ~Tracer() override {
    trace_->push_back("destroyed");
    ++*gone_;
  }
  void connectionMade() override { trace_->push_back("made"); }
  void dataReceived(absl::string_view data) override {
    // Coalesce: how the kernel splits a stream is not the poller's doing.
    if (!trace_->empty() && absl::StartsWith(trace_->back(), "data:")) {
      trace_->back().append(data.data(), data.size());
    } else {
      trace_->push_back(absl::StrCat("data:", data));
    }
    transport()->write(data);
  }
  void readConnectionLost() override {
    trace_->push_back("readConnectionLost");
    transport()->write("bye");
    transport()->loseConnection();
  }
  void connectionLost(const absl::Status& reason) override {
    trace_->push_back(IsConnectionDone(reason)    ? "lost:done"
                      : IsConnectionLost(reason)  ? "lost:lost"
                      : IsConnectionAborted(reason) ? "lost:aborted"
                                                    : "lost:?");
  }

 private:
  std::vector<std::string>* trace_;
  int* gone_;
};

// One connection half-closed after two messages, one reset by the peer, one
// aborted by the reactor's destruction; returns the three traces in order.
std::vector<std::vector<std::string>> RunScenario(const std::string& poller) {
  std::vector<std::vector<std::string>> traces(3);
  int next = 0, gone = 0;
  Factory factory([&]() -> std::unique_ptr<Protocol> {
    return std::make_unique<Tracer>(&traces[next++], &gone);
  });
  auto reactor = testing::MakeReactor(poller);
  absl::StatusOr<Port*> port = reactor->listenTCP(0, &factory, 16, "127.0.0.1");
  EXPECT_TRUE(port.ok());
  Address addr = (*port)->getHost();

  BlockingClient a = *BlockingClient::Connect(addr);
  EXPECT_TRUE(a.SendAll("hello ").ok());
  EXPECT_TRUE(RunUntil(*reactor, [&] { return next == 1; }));
  EXPECT_TRUE(a.SendAll("world").ok());
  a.ShutdownWrite();
  EXPECT_TRUE(RunUntil(*reactor, [&] { return gone == 1; }));
  absl::StatusOr<std::string> all = a.ReadToEof();
  EXPECT_TRUE(all.ok() && *all == "hello worldbye") << all.status();

  BlockingClient b = *BlockingClient::Connect(addr);
  EXPECT_TRUE(b.SendAll("x").ok());
  EXPECT_TRUE(RunUntil(*reactor, [&] { return traces[1].size() >= 2; }));
  b.Reset();
  EXPECT_TRUE(RunUntil(*reactor, [&] { return gone == 2; }));

  BlockingClient c = *BlockingClient::Connect(addr);
  EXPECT_TRUE(RunUntil(*reactor, [&] { return next == 3; }));
  EXPECT_EQ(reactor->connectionCount(), 1u);
  reactor.reset();  // aborts what is left: connectionLost(aborted)
  return traces;
}

TEST(PollerEquivalenceTest, SameTrafficSameCallbacksOnEveryPoller) {
  std::vector<std::vector<std::string>> reference = RunScenario("epoll");
  EXPECT_THAT(reference[0], ElementsAre("made", "data:hello world", "readConnectionLost",
                                        "lost:done", "destroyed"));
  EXPECT_THAT(reference[1], ElementsAre("made", "data:x", "lost:lost", "destroyed"));
  EXPECT_THAT(reference[2], ElementsAre("made", "lost:aborted", "destroyed"));
  for (const std::string& poller : PollerNames()) {
    EXPECT_EQ(RunScenario(poller), reference) << poller;
  }
}

}  // namespace
}  // namespace twist
