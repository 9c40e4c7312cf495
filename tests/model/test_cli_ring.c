/* --ring SIZE: the weight buffer stays within SIZE (the report's weight_buffer_bytes),
 * the output is the same as with the plan's buffer, the memory it leaves goes to pins
 * (more pinned bytes with a smaller buffer at the same budget), and a buffer below
 * three of the widest extents is refused with the size needed.
 *
 * usage: test_cli_ring MKMODEL STREAM-INFER */
#include "../test_util.h"

static char *run(const char *si, const char *model, const char *extra, const char *tag, int *status)
{
    const char *root = getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".";
    char out[4400], cmd[16384];
    snprintf(out, sizeof out, "%s/test-models/ring-%s.out", root, tag);
    snprintf(cmd, sizeof cmd,
             "'%s' -m '%s' --prompt-ids '1 17 42' -n 6 --temp 0 --print-ids --draft none -q %s > '%s' 2>&1", si,
             model, extra, out);
    *status = system(cmd);
    char *text = test_read_file(out, NULL);
    CHECKF(text, "no output from: %s", cmd);
    return text;
}

static uint64_t field(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(json, k);
    CHECKF(p, "no %s in the report", key);
    return strtoull(p + strlen(k), NULL, 10);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MKMODEL STREAM-INFER\n", argv[0]);
        return 2;
    }
    char model[4200], extra[9000], rep[4400];
    /* rows of 1024 Q8_0 values (1088 bytes): three extents of one row are 36 KiB */
    test_mkmodel(argv[1], "ring", "--seed 4 --dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 1024 --vocab-size 300 "
                 "--type Q8_0", model, sizeof model);
    const char *root = getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".";
    int st;
    char *plan_out = run(argv[2], model, "--pin none", "plan", &st);
    CHECKF(st == 0, "default run failed: %s", plan_out);

    snprintf(rep, sizeof rep, "%s/test-models/ring-small.json", root);
    snprintf(extra, sizeof extra, "--pin none --ring 64K --report-json '%s'", rep);
    char *small = run(argv[2], model, extra, "small", &st);
    CHECKF(st == 0, "--ring 64K failed: %s", small);
    CHECKF(strcmp(small, plan_out) == 0, "--ring 64K changed the output:\n%s\nagainst\n%s", small, plan_out);
    char *json = test_read_file(rep, NULL);
    CHECK(json);
    uint64_t ring = field(json, "weight_buffer_bytes");
    printf("--ring 64K: weight buffer %llu bytes, peak %llu\n", (unsigned long long)ring,
           (unsigned long long)field(json, "weight_buffer_peak_bytes"));
    CHECKF(ring <= 65536 && ring > 0, "weight buffer %llu with --ring 64K", (unsigned long long)ring);
    free(json);

    /* At a budget that cannot pin everything, the smaller buffer leaves more pinned. */
    uint64_t pinned[2];
    const char *rings[2] = {"", "--ring 64K"};
    for (int i = 0; i < 2; i++) {
        snprintf(rep, sizeof rep, "%s/test-models/ring-pin%d.json", root, i);
        snprintf(extra, sizeof extra, "--mem-budget 1200K -c 64 --pin auto %s --report-json '%s'", rings[i], rep);
        char *o = run(argv[2], model, extra, i ? "pin1" : "pin0", &st);
        CHECKF(st == 0, "%s failed: %s", extra, o);
        CHECKF(strcmp(o, plan_out) == 0, "%s changed the output", extra);
        free(o);
        json = test_read_file(rep, NULL);
        CHECK(json);
        pinned[i] = field(json, "pinned_bytes");
        printf("budget 1200K %s: weight buffer %llu, pinned %llu\n", rings[i][0] ? rings[i] : "(plan's buffer)",
               (unsigned long long)field(json, "weight_buffer_bytes"), (unsigned long long)pinned[i]);
        free(json);
    }
    CHECKF(pinned[1] > pinned[0], "a 64K buffer pinned %llu bytes, the plan's %llu", (unsigned long long)pinned[1],
           (unsigned long long)pinned[0]);

    char *refused = run(argv[2], model, "--ring 8K", "refused", &st);
    CHECKF(st != 0 && strstr(refused, "--ring") && strstr(refused, "too small") && strstr(refused, "at least "),
           "--ring 8K: status %d, %s", st, refused);
    char *bad = run(argv[2], model, "--ring lots", "bad", &st);
    CHECKF(st != 0 && strstr(bad, "invalid value 'lots' for --ring"), "--ring lots: %s", bad);
    free(plan_out);
    free(small);
    free(refused);
    free(bad);
    return 0;
}
