#ifndef PESC_POOL_POOL_CONVERSION_H_
#define PESC_POOL_POOL_CONVERSION_H_

// The one place where the protocol's pool messages become the pool's plain
// types (pool_types.h) and back: the admin service converts what admins
// send and are told here, the pool store what it keeps (the protocol's
// bytes, as ever), and a session's pool what it asks its coordinator for.

#include "pesc/v1/admin.pb.h"
#include "pool/pool_types.h"

namespace pesc {

PoolSpec from_proto(const v1::PoolSpec& spec);
v1::PoolSpec to_proto(const PoolSpec& spec);
v1::PoolStatus to_proto(const PoolStatus& status);

}  // namespace pesc

#endif  // PESC_POOL_POOL_CONVERSION_H_
