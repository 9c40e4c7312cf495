/* AUTO when io_uring cannot be set up at run time (argv: ENOSYS or EPERM): a seccomp
 * filter makes io_uring_setup fail the way qemu-user (ENOSYS) or a container policy /
 * kernel.io_uring_disabled (EPERM) does. AUTO must fall back to pread and say why
 * in si_io_note; URING must fail with SI_ENOSYS and a message naming the cause.
 * The filter matches the system call number only (test process, no arch check). */
#include "io_test_util.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define SEED 0x0b0bu

static int block_io_uring_setup(int errnum)
{
#ifdef __NR_io_uring_setup
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)errnum),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = {.len = sizeof prog / sizeof prog[0], .filter = prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "ENOSYS") && strcmp(argv[1], "EPERM"))) {
        fprintf(stderr, "usage: %s ENOSYS|EPERM\n", argv[0]);
        return 2;
    }
    int errnum = strcmp(argv[1], "EPERM") == 0 ? EPERM : ENOSYS;
    if (block_io_uring_setup(errnum) != 0) {
        printf("SKIP: cannot install a seccomp filter here: %s%s\n", strerror(errno),
               getenv("SI_EMULATED") ? " (qemu-user does not emulate seccomp; the native run tests this)" : "");
        return SKIP;
    }
    char name[64], path[4096];
    snprintf(name, sizeof name, "io-noring-%s.bin", argv[1]);
    t_path(path, sizeof path, name);
    if (t_write_file(path, 64 * 1024, SEED) != 0)
        return 1;

    si_io_opts o = {.kind = SI_IO_AUTO};
    si_io *io = NULL;
    si_error err = {0};
    int rc = si_io_open(&io, path, &o, &err);
    CHECK(rc == SI_OK, "AUTO open: %s", err.msg);
    if (io) {
        printf("AUTO picked %s; note \"%s\"\n", si_io_backend(io), si_io_note(io));
        CHECK(strcmp(si_io_backend(io), "pread") == 0, "AUTO picked %s", si_io_backend(io));
        CHECK(strstr(si_io_note(io), "io_uring unavailable") && strstr(si_io_note(io), "pread"),
              "note: \"%s\"", si_io_note(io));
        CHECK(strstr(si_io_note(io), strerror(errnum)) != NULL || strstr(si_io_note(io), "built"),
              "note does not give the cause: \"%s\"", si_io_note(io));
        size_t a = si_io_alignment(io);
        uint8_t *buf = t_aligned(a, 2 * a);
        CHECK(si_io_submit(io, a, 2 * a, buf, 3, &err) == SI_OK, "submit: %s", err.msg);
        uint64_t t = 0;
        CHECK(si_io_reap(io, true, &t, &err) == 1 && t == 3, "reap: %s", err.msg);
        CHECK(t_mismatch(buf, a, 2 * a, SEED) < 0, "data differs");
        free(buf);
        si_io_close(io);
    }
    for (int compat = 0; compat < 2; compat++) {
        o = (si_io_opts){.kind = SI_IO_URING, .compat_5_10 = compat};
        rc = si_io_open(&io, path, &o, &err);
        CHECK(rc == SI_ENOSYS && !io && strstr(err.msg, path) && strstr(err.msg, "io_uring"),
              "URING: rc %d \"%s\"", rc, err.msg);
        printf("URING%s: %s\n", compat ? " (compat_5_10)" : "", err.msg);
    }
    unlink(path);
    if (t_failures)
        return 1;
    printf("PASS %s\n", argv[1]);
    return 0;
}
