#ifndef PESC_WORKER_OWNER_PRESENCE_H_
#define PESC_WORKER_OWNER_PRESENCE_H_

// Whether a person is using this machine, from what Linux tells without X
// libraries: the sessions in utmp (who) and when their terminals, the
// keyboards and the mice (/dev/input) were last used (access times, which
// the kernel moves on input). Someone used one within the idle time: present.
// Someone is logged in but no terminal or input device can be looked at:
// present too, as nothing says they left.

#include <string>

#include "absl/time/time.h"
#include "worker/owner_policy.h"

namespace pesc {

// Why the machine counts as in use, in words; empty when it does not.
std::string owner_presence(const OwnerPolicy& policy, absl::Time now);

}  // namespace pesc

#endif  // PESC_WORKER_OWNER_PRESENCE_H_
