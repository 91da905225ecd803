/*
 * The worker thread: runs store jobs one at a time on its own store handle, so that the lws
 * service loop never waits on SQLite. Two queues join the threads:
 *   - the job queue, bounded by queue_depth: worker_submit refuses when it is full and the
 *     session answers BUSY instead of buffering without bound;
 *   - the completion queue: finished jobs wait there until the service thread, woken by
 *     wake(wake_arg) (lws_cancel_service), collects them with worker_take_done.
 * A job counts against queue_depth from submission until it is collected, so both queues
 * together hold at most queue_depth jobs.
 */
#ifndef OUTPOSTD_WORKER_H
#define OUTPOSTD_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"

typedef struct worker worker;

/* Opens the store (it must exist) and starts the thread: the PostgreSQL database conninfo names
 * when conninfo is not NULL, else the SQLite file at store_path. On failure returns -1 with a
 * message in err. env is copied. The thread blocks SIGINT and SIGTERM so that they reach the
 * service thread. */
int worker_start(const char *store_path, const char *conninfo, uint32_t queue_depth,
                 const job_env *env, void (*wake)(void *wake_arg), void *wake_arg,
                 worker **out_worker, char *err, size_t err_size);

/* Queues a job. Returns 0, or -1 when the queue is full (the caller keeps the job). */
int worker_submit(worker *w, job *j);

/* Takes every finished job, oldest first, as a list linked by job->next (NULL when none). */
job *worker_take_done(worker *w);

/* Jobs submitted and not yet collected (what counts against queue_depth). Any thread. */
uint32_t worker_in_flight(worker *w);

/* How long the job now running has run, in milliseconds; 0 when the worker is idle. A worker
 * that stays busy on one job for long is stuck (the health check says so). Any thread. */
uint64_t worker_busy_ms(worker *w);

/* Lets the running job finish, drops queued and finished jobs, joins the thread, closes the
 * store and frees the worker. NULL is a no-op. */
void worker_stop(worker *w);

#endif /* OUTPOSTD_WORKER_H */
