/* Fault injection for tests (built only with -Dfault_injection=true; absent from
 * release builds): the backends ask si_io_fi_next() before every read they issue to
 * the kernel (each pread call, each io_uring read SQE, resubmissions included) and act
 * out the fault it names. The read counter is shared by every handle and thread (a
 * lock keeps it whole); which read is the k-th is defined only with one reader. */
#include "io_internal.h"

#if SI_FAULT_INJECTION

#include <pthread.h>

static pthread_mutex_t g_fi_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
    si_fi_kind kind;
    uint64_t at;      /* index of the first faulty read, counted from arming */
    unsigned times;   /* consecutive reads that get the fault */
    uint64_t reads;   /* reads counted since arming */
    unsigned fired;
    bool setup_fail;
    bool late_pending; /* pread: the read just done completes late */
} g_fi;

void si_io_fi_arm(si_fi_kind kind, uint64_t at, unsigned times)
{
    g_fi.kind = kind;
    g_fi.at = at;
    g_fi.times = times;
    g_fi.reads = 0;
    g_fi.fired = 0;
    g_fi.late_pending = false;
}

void si_io_fi_setup_fail(bool on) { g_fi.setup_fail = on; }
bool si_io_fi_setup_should_fail(void) { return g_fi.setup_fail; }
uint64_t si_io_fi_reads(void) { return g_fi.reads; }
unsigned si_io_fi_fired(void) { return g_fi.fired; }

si_fi_kind si_io_fi_next(void)
{
    pthread_mutex_lock(&g_fi_lock);
    uint64_t i = g_fi.reads++;
    si_fi_kind k = SI_FI_NONE;
    if (g_fi.kind != SI_FI_NONE && i >= g_fi.at && i - g_fi.at < g_fi.times) {
        g_fi.fired++;
        k = g_fi.kind;
    }
    pthread_mutex_unlock(&g_fi_lock);
    return k;
}

void si_io_fi_set_late(void)
{
    pthread_mutex_lock(&g_fi_lock);
    g_fi.late_pending = true;
    pthread_mutex_unlock(&g_fi_lock);
}

bool si_io_fi_take_late(void)
{
    pthread_mutex_lock(&g_fi_lock);
    bool l = g_fi.late_pending;
    g_fi.late_pending = false;
    pthread_mutex_unlock(&g_fi_lock);
    return l;
}

#endif
