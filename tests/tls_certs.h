#ifndef TWIST_TESTS_TLS_CERTS_H_
#define TWIST_TESTS_TLS_CERTS_H_

#include <string>

#include "absl/status/statusor.h"

namespace twist {
namespace testing {

/// Throwaway certificates, made at test time with the openssl CLI in a
/// fresh directory (under TEST_TMPDIR): a CA, and signed by it a server
/// certificate for localhost and 127.0.0.1, an expired one for the same
/// names, one for another host (wrong.example), and a client certificate;
/// plus a second CA that signed none of them (for "unknown CA"). Each
/// `X` is X.pem (certificate) and X.key (EC P-256 key) in `dir`.
struct TestCerts {
  std::string dir;
  std::string pem(const std::string& name) const { return dir + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir + "/" + name + ".key"; }
};

/// Made once per test process.
absl::StatusOr<TestCerts> MakeTestCerts();

/// MakeTestCerts() for a test: says why on stderr and aborts the test
/// process if they cannot be made (no TLS test can run without them).
const TestCerts& Certs();

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_TLS_CERTS_H_
