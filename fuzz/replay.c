/* The harnesses without libFuzzer: feed every file named (or in the folders named) to
 * LLVMFuzzerTestOneInput once. Built in every build (tests 'fuzz-replay-*'): the seeds
 * and the inputs of past findings (fuzz/regress/NAME) go through the same entry point
 * as under the fuzzer, so a fixed bug stays fixed. --fixtures: the harness loads
 * fixtures; skip (77) when they are absent. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int feed(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        fclose(f);
        free(buf);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    printf("replay: %s (%ld bytes) ok\n", path, n);
    return 0;
}

int main(int argc, char **argv)
{
    int bad = 0, i = 1;
    if (argc > 1 && strcmp(argv[1], "--fixtures") == 0) {
        i++;
        struct stat st;
        const char *dir = getenv("SI_FIXTURES");
        if (!dir || stat(dir, &st) != 0) {
            printf("SKIP: fixtures not found (%s)\n", dir ? dir : "SI_FIXTURES unset");
            return 77;
        }
    }
    for (; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0)
            continue; /* a folder that does not exist yet: nothing to replay */
        if (!S_ISDIR(st.st_mode)) {
            bad |= feed(argv[i]);
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            bad |= feed(p);
        }
        if (d)
            closedir(d);
    }
    return bad;
}
