#ifndef PESC_TRANSPORT_JOB_OPTIONS_H_
#define PESC_TRANSPORT_JOB_OPTIONS_H_

// A job's MapOptions onto the JobSpec a coordinator receives: the library's
// client and the web's submit send options this one way. The process, its
// entry, the name, shared files and the user are each caller's to set.

#include "pesc/pesc.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

void set_job_options(const MapOptions& options, v1::JobSpec& spec);

}  // namespace pesc

#endif  // PESC_TRANSPORT_JOB_OPTIONS_H_
