#ifndef PESC_DAEMONS_SIGNALS_H_
#define PESC_DAEMONS_SIGNALS_H_

#include <functional>

namespace pesc {

// Blocks SIGINT and SIGTERM in every thread and runs `on_signal` (with the
// signal number) on a dedicated thread when one arrives. Call before any
// other thread starts.
void on_termination_signal(std::function<void(int)> on_signal);

}  // namespace pesc

#endif  // PESC_DAEMONS_SIGNALS_H_
