#include "worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "checkpoint.h"
#include "log.h"

/* WAL checkpoints (store_wal_tend): an idle worker copies a backlog of 4 MiB (SQLite's own
 * threshold in 4 KiB pages), so a device's stream of small pushes does not pay two fsyncs of a
 * checkpoint after each; past 64 MiB the worker truncates the WAL after the job that took it
 * there, even when more jobs wait. In bytes: a store's page size is 16 KiB or 4 KiB. */
#define WORKER_WAL_IDLE_BYTES (4u << 20)
#define WORKER_WAL_LIMIT_BYTES (64u << 20)

struct worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wakeup;
    bool stopping;
    job *queue_head, *queue_tail;
    job *done_head, *done_tail;
    uint32_t in_flight; /* submitted and not yet collected */
    uint32_t queue_depth;
    uint64_t running_since_us; /* start of the job now running; 0 when idle */
    store *st;
    job_env env;
    void (*wake)(void *);
    void *wake_arg;
};

static uint64_t monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t wall_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Emits a checkpoint with the lock released (the store is the worker's alone). Only the worker
 * that env->checkpoints names does: one checkpoint per event, whatever the number of lanes. */
static void checkpoint_unlocked(worker *w, const char *why)
{
    if (!w->env.checkpoints)
        return;
    pthread_mutex_unlock(&w->lock);
    checkpoint_emit(w->st, w->env.checkpoint_path, wall_ms(), why);
    pthread_mutex_lock(&w->lock);
}

static void free_list(job *j)
{
    while (j) {
        job *next = j->next;
        job_free(j);
        j = next;
    }
}

/* Hands a finished job to the service thread (wake), with its time on the worker. */
static void job_done(job *j, void *arg)
{
    worker *w = arg;

    pthread_mutex_lock(&w->lock);
    j->run_us = monotonic_us() - w->running_since_us;
    if (w->done_tail)
        w->done_tail->next = j;
    else
        w->done_head = j;
    w->done_tail = j;
    pthread_mutex_unlock(&w->lock);
    w->wake(w->wake_arg);
}

static void *worker_main(void *arg)
{
    worker *w = arg;

    uint64_t interval_us = (uint64_t)w->env.checkpoint_interval_s * 1000000u;
    uint64_t due_us = monotonic_us() + interval_us;

    pthread_mutex_lock(&w->lock);
    checkpoint_unlocked(w, "start");
    for (;;) {
        job *j;
        while (!w->stopping && !w->queue_head) {
            if (interval_us == 0) {
                pthread_cond_wait(&w->wakeup, &w->lock);
                continue;
            }
            uint64_t now_us = monotonic_us();
            if (now_us >= due_us) {
                checkpoint_unlocked(w, "scheduled");
                due_us = monotonic_us() + interval_us;
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            uint64_t wait_us = due_us - now_us;
            until.tv_sec += (time_t)(wait_us / 1000000u);
            until.tv_nsec += (long)(wait_us % 1000000u) * 1000;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->wakeup, &w->lock, &until);
        }
        if (w->stopping)
            break;
        if (interval_us != 0 && monotonic_us() >= due_us) {
            checkpoint_unlocked(w, "scheduled");
            due_us = monotonic_us() + interval_us;
        }
        /* Consecutive PUSH jobs at the head go together (group commit, job_run_pushes); any
         * other job, or a PUSH behind one, waits its turn: the queue's order is kept. */
        job *group[JOB_GROUP_ENTRIES];
        uint32_t n = 0;
        do {
            j = w->queue_head;
            w->queue_head = j->next;
            if (!w->queue_head)
                w->queue_tail = NULL;
            j->next = NULL;
            group[n++] = j;
        } while (j->kind == JOB_PUSH && n < JOB_GROUP_ENTRIES && w->queue_head &&
                 w->queue_head->kind == JOB_PUSH);
        w->running_since_us = monotonic_us();
        pthread_mutex_unlock(&w->lock);

        if (j->kind == JOB_PUSH) {
            job_run_pushes(group, n, w->st, &w->env, job_done, w);
        } else {
            job_run(j, w->st, &w->env);
            job_done(j, w);
        }

        job_after(w->st, &w->env); /* the next pull page a PULL planned, while replies travel */
        /* The WAL's checkpoint, off the job's commit (its reply is on its way already), when
         * no job waits or the WAL is past its bound. */
        pthread_mutex_lock(&w->lock);
        w->running_since_us = 0;
        bool idle = !w->queue_head;
        pthread_mutex_unlock(&w->lock);
        if (store_wal_tend(w->st, idle) != STORE_OK)
            log_msg(LOG_WARN, "store: %s", store_errmsg(w->st));
        pthread_mutex_lock(&w->lock);
    }
    checkpoint_unlocked(w, "stop");
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* A constraint of the store's schema that devices cannot keep (init refuses them now; a store
 * made before may have one): named once at start, so that the operator can plan an upgrade. */
static void schema_warning(void *user_data, const char *message)
{
    (void)user_data;
    log_msg(LOG_WARN, "store schema: %s", message);
}

int worker_start(const char *store_path, const char *conninfo, uint32_t queue_depth,
                 const job_env *env, void (*wake)(void *wake_arg), void *wake_arg,
                 worker **out_worker, char *err, size_t err_size)
{
    worker *w = calloc(1, sizeof *w);
    sigset_t blocked, previous;
    int rc;

    if (!w) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    if ((conninfo ? store_open_postgresql(conninfo, false, &w->st, err, err_size)
                  : store_open(store_path, false, &w->st, err, err_size)) != STORE_OK) {
        free(w);
        return -1;
    }
    char moved[256];
    if (store_restore_unmarked(w->st, moved, sizeof moved)) {
        snprintf(err, err_size, STORE_UNMARKED_RESTORE_FMT, moved);
        store_close(w->st);
        free(w);
        return -1;
    }
    /* PostgreSQL: the serving lock, held while the handle lives (outpost-admin restored). */
    if (store_serve(w->st) != STORE_OK) {
        snprintf(err, err_size, "%s", store_errmsg(w->st));
        store_close(w->st);
        free(w);
        return -1;
    }
    if (store_audit_key_load(w->st, env->audit_key_path) != STORE_OK) {
        snprintf(err, err_size, "%s", store_errmsg(w->st));
        store_close(w->st);
        free(w);
        return -1;
    }
    /* once per daemon: by the worker that also emits the audit checkpoints */
    if (env->checkpoints && store_schema_warnings(w->st, schema_warning, NULL) != STORE_OK)
        log_msg(LOG_WARN, "store schema: %s", store_errmsg(w->st));
    store_set_page_limit(w->st, env->max_reply_bytes);
    uint32_t page = store_page_bytes(w->st);
    if (page > 0)
        store_wal_defer(w->st, WORKER_WAL_IDLE_BYTES / page, WORKER_WAL_LIMIT_BYTES / page);
    w->queue_depth = queue_depth;
    w->env = *env;
    w->wake = wake;
    w->wake_arg = wake_arg;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wakeup, NULL);

    /* The new thread inherits this mask: signals then go to the service thread, whose poll()
     * they interrupt. */
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the worker thread");
        store_close(w->st);
        pthread_cond_destroy(&w->wakeup);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return -1;
    }
    *out_worker = w;
    return 0;
}

int worker_submit(worker *w, job *j)
{
    int rc = -1;

    pthread_mutex_lock(&w->lock);
    if (!w->stopping && w->in_flight < w->queue_depth) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        j->now_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
        j->next = NULL;
        if (w->queue_tail)
            w->queue_tail->next = j;
        else
            w->queue_head = j;
        w->queue_tail = j;
        w->in_flight++;
        pthread_cond_signal(&w->wakeup);
        rc = 0;
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

job *worker_take_done(worker *w)
{
    job *list, *j;

    pthread_mutex_lock(&w->lock);
    list = w->done_head;
    w->done_head = w->done_tail = NULL;
    for (j = list; j; j = j->next)
        w->in_flight--;
    pthread_mutex_unlock(&w->lock);
    return list;
}

void worker_stop(worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->wakeup);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);

    free_list(w->queue_head);
    free_list(w->done_head);
    store_close(w->st);
    pthread_cond_destroy(&w->wakeup);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

uint32_t worker_in_flight(worker *w)
{
    uint32_t n;

    pthread_mutex_lock(&w->lock);
    n = w->in_flight;
    pthread_mutex_unlock(&w->lock);
    return n;
}

uint64_t worker_busy_ms(worker *w)
{
    uint64_t since;

    pthread_mutex_lock(&w->lock);
    since = w->running_since_us;
    pthread_mutex_unlock(&w->lock);
    return since ? (monotonic_us() - since) / 1000u : 0;
}
