// Runs /bin/echo as three ranks on the embedded farm and checks the order.
#include <pesc/pesc.h>

#include <iostream>

int main() {
  pesc::Farm farm("native", {.slots = 2});
  pesc::Results results = farm.map("/bin/echo", 3, {"hello"}).wait();
  for (const pesc::RankResult& rank : results) {
    if (!rank.ok() || rank.output.find("--rank " + std::to_string(rank.rank)) == std::string::npos) {
      std::cerr << "rank " << rank.rank << " came back wrong: " << rank.output;
      return 1;
    }
  }
  std::cout << "consumer ok: " << results.size() << " ranks\n";
  return 0;
}
