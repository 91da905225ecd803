/*
 * One example of every protocol message, shared by the unit test, the fuzz corpus generator and
 * the tool that prints docs/protocol.md's hex dumps, so all three show the same bytes.
 */
#ifndef OUTPOST_PROTO_EXAMPLES_H
#define OUTPOST_PROTO_EXAMPLES_H

#include <stddef.h>

#include "outpost/proto.h"

/* Number of examples: one per message type, in message type order, then variants. */
size_t proto_example_count(void);

/* The i-th example (i < proto_example_count()). Points to static storage: do not free. */
const proto_msg *proto_example(size_t i);

/* A short lowercase name for file names and headings ("hello", "push-update", ...). */
const char *proto_example_name(size_t i);

#endif /* OUTPOST_PROTO_EXAMPLES_H */
