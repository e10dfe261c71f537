#include "tests/tls_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/subprocess.h"

namespace twist {
namespace testing {
namespace {

// CN, subjectAltName and validity (days; -1 is already expired) of each
// certificate the CA signs.
constexpr char kScript[] = R"(set -e
cd "$1"
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj "/CN=twist test CA" 2>/dev/null
openssl req -x509 $ec -keyout other_ca.key -out other_ca.pem -days 2 -subj "/CN=another CA" 2>/dev/null
mk() {
  openssl req $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf "subjectAltName=%s\n" "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$1.pem" -days "$4" -extfile "$1.ext" 2>/dev/null
}
mk server localhost "DNS:localhost,IP:127.0.0.1" 2
mk expired localhost "DNS:localhost,IP:127.0.0.1" -1
mk wronghost wrong.example "DNS:wrong.example" 2
mk client "twist test client" "DNS:client" 2
)";

}  // namespace

absl::StatusOr<TestCerts> MakeTestCerts() {
  static absl::StatusOr<TestCerts>* made = [] {
    const char* tmp = getenv("TEST_TMPDIR");
    TestCerts certs;
    certs.dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/tls-certs-", getpid());
    if (mkdir(certs.dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return new absl::StatusOr<TestCerts>(absl::ErrnoToStatus(errno, certs.dir));
    }
    absl::StatusOr<Subprocess> p = Subprocess::Start("/bin/sh", {"-c", kScript, "sh", certs.dir});
    if (!p.ok()) return new absl::StatusOr<TestCerts>(p.status());
    absl::StatusOr<int> status = p->Wait(absl::Seconds(60));
    if (!status.ok()) return new absl::StatusOr<TestCerts>(status.status());
    if (*status != 0) {
      return new absl::StatusOr<TestCerts>(absl::InternalError(
          absl::StrCat("making the test certificates failed: ", p->err())));
    }
    return new absl::StatusOr<TestCerts>(certs);
  }();
  return *made;
}

const TestCerts& Certs() {
  static const TestCerts* certs = [] {
    absl::StatusOr<TestCerts> c = MakeTestCerts();
    if (!c.ok()) {
      fprintf(stderr, "cannot make the test certificates: %s\n", c.status().ToString().c_str());
      abort();
    }
    return new TestCerts(*c);
  }();
  return *certs;
}

}  // namespace testing
}  // namespace twist
