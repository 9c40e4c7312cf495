/* Fault injection for tests (built only with -Dfault_injection=true; absent from
 * release builds): the backends ask si_io_fi_next() before every read they issue to
 * the kernel (each pread call, each io_uring read SQE, resubmissions included) and act
 * out the fault it names. Not thread-safe: tests use one thread. */
#include "io_internal.h"

#if SI_FAULT_INJECTION

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
    uint64_t i = g_fi.reads++;
    if (g_fi.kind == SI_FI_NONE || i < g_fi.at || i - g_fi.at >= g_fi.times)
        return SI_FI_NONE;
    g_fi.fired++;
    return g_fi.kind;
}

void si_io_fi_set_late(void) { g_fi.late_pending = true; }

bool si_io_fi_take_late(void)
{
    bool l = g_fi.late_pending;
    g_fi.late_pending = false;
    return l;
}

#endif
