/* Backend selection. AUTO picks io_uring when it can be set up, else pread with a
 * note saying why (always pread in a build without io_uring); URING either works or
 * fails with SI_ENOSYS and a message naming io_uring; PREAD is pread. Also: bad
 * options and a missing file give clear errors. */
#include "io_test_util.h"

#include "si_config.h"

#define SEED 0xa070u

static si_io *open_kind(const char *path, si_io_kind kind, bool compat, int *rc, si_error *err)
{
    si_io_opts o = {.kind = kind, .direct = SI_DIRECT_AUTO, .compat_5_10 = compat};
    si_io *io = NULL;
    *rc = si_io_open(&io, path, &o, err);
    return io;
}

/* URING (plain or 5.10-compatible): returns whether io_uring works here. */
static bool check_uring(const char *path, bool compat)
{
    si_error err = {0};
    int rc;
    si_io *io = open_kind(path, SI_IO_URING, compat, &rc, &err);
    if (rc == SI_OK) {
        CHECK(strcmp(si_io_backend(io), "io_uring") == 0, "URING gave %s", si_io_backend(io));
        printf("URING%s: %s\n", compat ? " (compat_5_10)" : "", si_io_detail(io));
        CHECK(SI_HAVE_URING, "io_uring opened in a build without it");
        si_io_close(io);
        return true;
    }
    CHECK(rc == SI_ENOSYS, "URING failed with %s, not SI_ENOSYS: %s", si_status_name(rc), err.msg);
    CHECK(strstr(err.msg, "io_uring") && strstr(err.msg, path), "unclear message: %s", err.msg);
    if (!SI_HAVE_URING)
        CHECK(strstr(err.msg, "built without io_uring") != NULL, "message: %s", err.msg);
    printf("URING%s unavailable (as reported): %s\n", compat ? " (compat_5_10)" : "", err.msg);
    return false;
}

int main(void)
{
    char path[4096];
    t_path(path, sizeof path, "io-auto.bin");
    if (t_write_file(path, 64 * 1024, SEED) != 0)
        return 1;
    si_error err = {0};
    int rc;

    bool uring_ok = check_uring(path, false);
    bool compat_ok = check_uring(path, true);
    CHECK(uring_ok == compat_ok, "io_uring works %s compat_5_10 only",
          compat_ok ? "with" : "without");

    si_io *io = open_kind(path, SI_IO_AUTO, false, &rc, &err);
    CHECK(rc == SI_OK, "AUTO open: %s", err.msg);
    if (io) {
        printf("AUTO picked %s [%s]; note \"%s\"\n", si_io_backend(io), si_io_detail(io),
               si_io_note(io));
        CHECK(strcmp(si_io_backend(io), uring_ok ? "io_uring" : "pread") == 0,
              "AUTO picked %s though io_uring %s", si_io_backend(io),
              uring_ok ? "works" : "does not");
        if (!uring_ok)
            CHECK(strstr(si_io_note(io), "io_uring") && strstr(si_io_note(io), "pread"),
                  "AUTO fell back without saying why: \"%s\"", si_io_note(io));
        if (!SI_HAVE_URING)
            CHECK(strstr(si_io_note(io), "built without io_uring") != NULL, "note: %s",
                  si_io_note(io));
        uint8_t buf[100];
        CHECK(si_io_read(io, 1000, sizeof buf, buf, &err) == SI_OK, "read: %s", err.msg);
        CHECK(t_mismatch(buf, 1000, sizeof buf, SEED) < 0, "AUTO read differs");
        si_io_close(io);
    }

    io = open_kind(path, SI_IO_PREAD, false, &rc, &err);
    CHECK(rc == SI_OK && strcmp(si_io_backend(io), "pread") == 0, "PREAD: %s", err.msg);
    si_io_close(io);

    /* Clear errors for bad input. */
    char missing[4200];
    snprintf(missing, sizeof missing, "%s.missing", path);
    io = open_kind(missing, SI_IO_AUTO, false, &rc, &err);
    CHECK(rc == SI_EIO && !io && strstr(err.msg, missing) && strstr(err.msg, "No such file"),
          "missing file: rc %d \"%s\"", rc, err.msg);
    si_io_opts bad = {.queue_depth = 100000};
    CHECK(si_io_open(&io, path, &bad, &err) == SI_EINVAL, "huge queue depth accepted");
    bad = (si_io_opts){.kind = (si_io_kind)7};
    CHECK(si_io_open(&io, path, &bad, &err) == SI_EINVAL, "unknown kind accepted");
    CHECK(si_io_open(&io, "/", NULL, &err) < 0, "directory accepted");
    printf("directory: %s\n", err.msg);
    si_io_close(NULL);

    unlink(path);
    if (t_failures)
        return 1;
    printf("PASS\n");
    return 0;
}
