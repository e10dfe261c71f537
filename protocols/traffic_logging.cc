#include "protocols/traffic_logging.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace twist {

TrafficLoggingProtocol::TrafficLoggingProtocol(std::unique_ptr<Protocol> wrapped,
                                               std::unique_ptr<std::ostream> log,
                                               size_t length_limit, int number)
    : ProtocolWrapper(std::move(wrapped)),
      log_(std::move(log)),
      length_limit_(length_limit),
      number_(number) {}

TrafficLoggingProtocol::~TrafficLoggingProtocol() = default;

void TrafficLoggingProtocol::log(absl::string_view line) {
  // Flushed line by line, as Twisted does: the log is complete up to the
  // last event even if the process dies.
  *log_ << line << '\n' << std::flush;
}

std::string TrafficLoggingProtocol::munge(absl::string_view data) const {
  if (length_limit_ == 0 || data.size() <= length_limit_) {
    return absl::StrCat("\"", absl::CHexEscape(data), "\"");
  }
  const size_t keep = length_limit_ > 12 ? length_limit_ - 12 : 0;
  return absl::StrCat("\"", absl::CHexEscape(data.substr(0, keep)), "\"<... ",
                      data.size() - keep, " bytes elided>");
}

void TrafficLoggingProtocol::connectionMade() {
  log("*");
  ProtocolWrapper::connectionMade();
}

void TrafficLoggingProtocol::dataReceived(absl::string_view data) {
  log(absl::StrCat("C ", number_, ": ", munge(data)));
  ProtocolWrapper::dataReceived(data);
}

void TrafficLoggingProtocol::readConnectionLost() {
  log(absl::StrCat("C ", number_, ": * write"));
  ProtocolWrapper::readConnectionLost();
}

void TrafficLoggingProtocol::connectionLost(const absl::Status& reason) {
  log(absl::StrCat("C ", number_, ": ", reason.ToString()));
  ProtocolWrapper::connectionLost(reason);
}

void TrafficLoggingProtocol::write(absl::string_view data) {
  log(absl::StrCat("S ", number_, ": ", munge(data)));
  ProtocolWrapper::write(data);
}

void TrafficLoggingProtocol::writeSequence(absl::Span<const absl::string_view> data) {
  std::string line = absl::StrCat("SV ", number_, ": [");
  for (size_t i = 0; i < data.size(); ++i) {
    absl::StrAppend(&line, i == 0 ? "" : ", ", munge(data[i]));
  }
  line += "]";
  log(line);
  ProtocolWrapper::writeSequence(data);
}

void TrafficLoggingProtocol::loseConnection() {
  log(absl::StrCat("S ", number_, ": *"));
  ProtocolWrapper::loseConnection();
}

void TrafficLoggingProtocol::abortConnection() {
  log(absl::StrCat("S ", number_, ": * abort"));
  ProtocolWrapper::abortConnection();
}

void TrafficLoggingProtocol::loseWriteConnection() {
  log(absl::StrCat("S ", number_, ": * write"));
  ProtocolWrapper::loseWriteConnection();
}

TrafficLoggingFactory::TrafficLoggingFactory(Factory* wrapped, std::string log_file_prefix,
                                             size_t length_limit)
    : WrappingFactory(wrapped), prefix_(std::move(log_file_prefix)), length_limit_(length_limit) {}

std::unique_ptr<std::ostream> TrafficLoggingFactory::open(const std::string& name) {
  auto file = std::make_unique<std::ofstream>(name, std::ios::out | std::ios::trunc);
  if (!file->is_open()) {
    std::lock_guard<std::mutex> lock(mu_);
    open_error_ = absl::UnavailableError(
        absl::StrCat("cannot open ", name, ": ", std::strerror(errno)));
    return nullptr;
  }
  return file;
}

std::unique_ptr<Protocol> TrafficLoggingFactory::buildProtocol(const Address& addr) {
  std::unique_ptr<Protocol> p = buildWrapped(addr);
  if (p == nullptr) return nullptr;
  // Atomic: the reactors of a pool build protocols at the same time.
  const int number = counter_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::unique_ptr<std::ostream> log = open(absl::StrCat(prefix_, "-", number));
  if (log == nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    if (open_error_.ok()) open_error_ = absl::UnavailableError("the log could not be opened");
    return nullptr;
  }
  return std::make_unique<TrafficLoggingProtocol>(std::move(p), std::move(log),
                                                  length_limit_, number);
}

}  // namespace twist
