// Runs every fuzz target (fuzz/targets.h) on its checked-in seed corpus
// (fuzz/corpus/<target>/) and on a few thousand deterministic pseudo-random
// inputs: mutations of the seeds and plain random bytes. A target aborts on
// a violated invariant, so a failure here is a crash, with the target's own
// message on stderr. An input tools/fuzz.sh finds crashing goes into the
// corpus as regression-*, with a named test below.

#include <dirent.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fuzz/targets.h"
#include "gtest/gtest.h"

namespace twist {
namespace fuzz {
namespace {

using FuzzFn = int (*)(const uint8_t*, size_t);

std::string CorpusDir(const std::string& target) {
  const char* dir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(dir != nullptr ? dir : ".", "/", ws != nullptr ? ws : "twist",
                      "/fuzz/corpus/", target);
}

// name -> contents, sorted by name.
std::vector<std::pair<std::string, std::string>> ReadCorpus(const std::string& target) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string dir = CorpusDir(target);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::ifstream f(dir + "/" + name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    out.emplace_back(name, ss.str());
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

int RunInput(FuzzFn fn, const std::string& input) {
  return fn(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

// The seeds, then `count` inputs: random bytes, or a seed with random bytes
// overwritten, inserted, erased or appended.
void RunAll(const std::string& target, FuzzFn fn, int count) {
  const auto corpus = ReadCorpus(target);
  ASSERT_GE(corpus.size(), 3u) << "no seed corpus in " << CorpusDir(target);
  for (const auto& [name, input] : corpus) {
    SCOPED_TRACE(name);
    EXPECT_EQ(RunInput(fn, input), 0);
  }
  std::mt19937 rng(20261201);
  for (int i = 0; i < count; ++i) {
    std::string input;
    if (i % 4 == 0) {
      input.resize(rng() % 512);
      for (char& c : input) c = static_cast<char>(rng());
    } else {
      input = corpus[rng() % corpus.size()].second;
      const int edits = 1 + rng() % 8;
      for (int e = 0; e < edits; ++e) {
        const size_t at = input.empty() ? 0 : rng() % input.size();
        switch (rng() % 4) {
          case 0: if (!input.empty()) input[at] = static_cast<char>(rng()); break;
          case 1: input.insert(at, 1, static_cast<char>(rng())); break;
          case 2: if (!input.empty()) input.erase(at, 1 + rng() % 8); break;
          default: input.push_back(static_cast<char>(rng())); break;
        }
      }
    }
    EXPECT_EQ(RunInput(fn, input), 0);
  }
}

TEST(FuzzTargetsTest, LineReceiver) { RunAll("line", line::FuzzOne, 20000); }
TEST(FuzzTargetsTest, Int32StringReceiver) { RunAll("int32", int32::FuzzOne, 20000); }
TEST(FuzzTargetsTest, NetstringReceiver) { RunAll("netstring", netstring::FuzzOne, 20000); }
TEST(FuzzTargetsTest, Chat) { RunAll("chat", chat::FuzzOne, 10000); }
TEST(FuzzTargetsTest, Http) { RunAll("http", http::FuzzOne, 5000); }
TEST(FuzzTargetsTest, RespParser) { RunAll("resp", resp::FuzzOne, 20000); }

// Found by tools/fuzz.sh (corpus/resp/regression-empty-attribute-at-end):
// an empty attribute ("|0") at the end of the input left the parser saying
// no reply was under way, though the value it describes had yet to come.
TEST(FuzzTargetsTest, RespEmptyAttributeAtTheEndIsUnfinished) {
  const std::string input("\x00\x03\x04\x00\x08|0\r\n+:1\r\n|0\r\n", 18);
  EXPECT_EQ(RunInput(resp::FuzzOne, input), 0);
}

// Empty and tiny inputs are valid programs for every target.
TEST(FuzzTargetsTest, EmptyAndOneByteInputs) {
  for (FuzzFn fn : {line::FuzzOne, int32::FuzzOne, netstring::FuzzOne, chat::FuzzOne,
                    http::FuzzOne, resp::FuzzOne}) {
    EXPECT_EQ(RunInput(fn, ""), 0);
    for (int b = 0; b < 256; ++b) EXPECT_EQ(RunInput(fn, std::string(1, static_cast<char>(b))), 0);
  }
}

}  // namespace
}  // namespace fuzz
}  // namespace twist
