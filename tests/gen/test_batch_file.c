/* stream-infer --batch-file on the trained fixture (tiny-trained/Q8_0.gguf):
 *   - a file mixing JSON lines, text lines, blank lines and bad lines (unknown field,
 *     wrong type, hostile values): each bad line gets an error object naming its line,
 *     the others run;
 *   - every request's ids equal those of a separate `stream-infer --prompt-ids/-p ...
 *     --print-ids` run of the same prompt: greedy, and seeded with temperature > 0;
 *   - --ordered writes the results in input order (and the same results);
 *   - a stop string cuts the text where it starts and ends the request ("stop");
 *   - a missing file is an error naming it.
 * usage: test_batch_file STREAM_INFER */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test_util.h"

static const char *si_exe, *model;
static char dir[4096];

/* Run cmd; its stdout, malloc'd and NUL-terminated. *status: exit status. */
static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    CHECKF(p, "cannot run %s", cmd);
    size_t n = 0, cap = 4096;
    char *s = malloc(cap);
    size_t k;
    while ((k = fread(s + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n - 1 == 0)
            s = realloc(s, cap *= 2);
    }
    s[n] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return s;
}

/* ids of a separate run: args are the prompt and sampling options. */
static json_t *alone(const char *args, int n_predict)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -q --print-ids -n %d %s", si_exe, model, n_predict, args);
    int st;
    char *out = run(cmd, &st);
    CHECKF(st == 0, "failed (%d): %s", st, cmd);
    json_t *a = json_array();
    for (char *t = strtok(out, " \n"); t; t = strtok(NULL, " \n"))
        json_array_append_new(a, json_integer(atol(t)));
    free(out);
    return a;
}

typedef struct results {
    json_t *obj[64];
    int n;
} results;

static void batch(const char *file, const char *extra, results *r)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -q --temp 0 -n 16 --parallel 4 %s --batch-file '%s'", si_exe, model,
             extra, file);
    int st;
    char *out = run(cmd, &st);
    CHECKF(st == 0, "exit status %d: %s", st, cmd);
    r->n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        CHECKF(json_is_object(o), "output line is not a JSON object (%s): %s", je.text, line);
        CHECKF(r->n < 64, "too many output lines");
        r->obj[r->n++] = o;
    }
    free(out);
}

/* json_equal, but two absent values are equal too. */
static bool same(json_t *a, json_t *b) { return (!a && !b) || json_equal(a, b); }

static json_t *by_id(const results *r, json_t *id)
{
    json_t *found = NULL;
    for (int i = 0; i < r->n; i++)
        if (json_equal(json_object_get(r->obj[i], "id"), id)) {
            CHECKF(!found, "id %s appears twice", json_dumps(id, JSON_ENCODE_ANY));
            found = r->obj[i];
        }
    CHECKF(found, "no result for id %s", json_dumps(id, JSON_ENCODE_ANY));
    return found;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    CHECKF(s, "%s is missing or not a string in %s", key, json_dumps(o, 0));
    return s;
}

static long num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    CHECKF(json_is_integer(v), "%s is missing or not an integer in %s", key, json_dumps(o, 0));
    return (long)json_integer_value(v);
}

static void check_ok(json_t *o, json_t *want_ids, const char *what)
{
    CHECKF(!json_object_get(o, "error"), "%s failed: %s", what, json_dumps(o, 0));
    json_t *ids = json_object_get(o, "ids");
    CHECKF(json_equal(ids, want_ids), "%s: batch ids %s, alone %s", what, json_dumps(ids, 0),
           json_dumps(want_ids, 0));
    CHECKF(json_object_get(o, "text") && json_is_string(json_object_get(o, "text")), "%s: no text", what);
    CHECKF(num(o, "completion_tokens") >= (long)json_array_size(ids), "%s: completion_tokens", what);
    CHECKF(json_is_number(json_object_get(o, "total_s")), "%s: total_s", what);
    const char *fr = str(o, "finish_reason");
    CHECKF(strcmp(fr, "length") == 0 || strcmp(fr, "stop") == 0, "%s: finish_reason %s", what, fr);
}

static void check_error(json_t *o, long line, const char *needle)
{
    CHECKF(num(o, "line") == line, "error object of line %ld: %s", line, json_dumps(o, 0));
    const char *e = str(o, "error");
    CHECKF(strstr(e, needle), "line %ld: error \"%s\" does not mention \"%s\"", line, e, needle);
    CHECKF(!json_object_get(o, "ids"), "line %ld ran: %s", line, json_dumps(o, 0));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECKF(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
}

int main(int argc, char **argv)
{
    CHECKF(argc == 2, "usage: %s STREAM_INFER", argv[0]);
    si_exe = argv[1];
    const char *fx = getenv("SI_FIXTURES");
    static char mpath[4096], ids_path[4200];
    snprintf(mpath, sizeof mpath, "%s/tiny-trained/Q8_0.gguf", fx ? fx : "");
    if (!fx || access(mpath, R_OK) != 0) {
        printf("SKIP: %s is absent (SI_FIXTURES=%s): the batch-file test needs the trained fixture\n", mpath,
               fx ? fx : "(unset)");
        return TEST_SKIP;
    }
    model = mpath;
    if (test_emulated())
        printf("emulated (%s): this runs about 20 short generations\n", test_emulated());
    snprintf(dir, sizeof dir, "%s/test-models", getenv("SI_BUILD_ROOT") ? getenv("SI_BUILD_ROOT") : ".");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(system(cmd) == 0);

    /* "The following options are supported:" with BOS, as the fixture has it. */
    snprintf(ids_path, sizeof ids_path, "%s/tiny-trained/ref/prompt.ids", fx);
    size_t n;
    char *pids = test_read_file(ids_path, &n);
    CHECKF(pids, "cannot read %s", ids_path);
    pids = realloc(pids, n + 1);
    pids[n] = 0;
    pids[strcspn(pids, "\n")] = 0;
    char pids_json[1024];
    snprintf(pids_json, sizeof pids_json, "[%s]", pids);
    for (char *p = pids_json; *p; p++)
        if (*p == ' ')
            *p = ',';

    char body[8192], fileA[4200], fileB[4200];
    snprintf(body, sizeof body,
             "The following options are supported:\n"                                                  /* 1 */
             "{\"id\": \"ids\", \"prompt_ids\": %s, \"n_predict\": 12}\n"                              /* 2 */
             "{\"id\": \"bad-field\", \"prompt\": \"x\", \"frobnicate\": 1}\n"                         /* 3 */
             "{\"id\": \"bad-type\", \"prompt\": \"x\", \"n_predict\": \"many\"}\n"                    /* 4 */
             "\n"                                                                                       /* 5 */
             "{\"id\": \"seeded\", \"prompt_ids\": [500, 51, 383, 282], \"temperature\": 0.9, \"seed\": 1234, "
             "\"n_predict\": 10}\n"                                                                     /* 6 */
             "NAME\n"                                                                                   /* 7 */
             "{\"id\": 42, \"prompt\": \"The\", \"top_k\": 5, \"n_predict\": 6}\n"                     /* 8 */
             "{\"prompt_ids\": [500, 99999]}\n"                                                         /* 9 */
             "{\"prompt\": \"x\", \"temperature\": 1e999}\n"                                            /* 10 */
             "{\"prompt\": \"x\", \"n_predict\": -7}\n"                                                 /* 11 */
             "{\"prompt\": \"x\", \"seed\": 123456789012345678901234567890}\n"                          /* 12 */
             "{\"prompt\": \"x\", \"temperature\": NaN}\n"                                              /* 13 */
             "{broken\n"                                                                                /* 14 */
             "caf\xe9 \xff not UTF-8\n",                                                                /* 15 */
             pids_json);
    snprintf(fileA, sizeof fileA, "%s/batch-a.jsonl", dir);
    write_file(fileA, body);

    results A;
    batch(fileA, "", &A);
    CHECKF(A.n == 14, "%d results for 14 request lines", A.n);

    json_t *id;
    /* Line 1 (text, greedy defaults of the command line) and line 2 (the same prompt as ids). */
    json_t *l1 = by_id(&A, id = json_integer(1));
    json_decref(id);
    snprintf(cmd, sizeof cmd, "--temp 0 --prompt-ids '%s'", pids);
    json_t *g16 = alone(cmd, 16);
    check_ok(l1, g16, "line 1 (text prompt)");
    CHECKF(num(l1, "prompt_tokens") == 19, "line 1: prompt_tokens %ld, expected 19", num(l1, "prompt_tokens"));
    CHECKF(strcmp(str(l1, "finish_reason"), "length") == 0, "line 1 should end by length");
    json_t *g12 = alone(cmd, 12);
    json_t *l2 = by_id(&A, id = json_string("ids"));
    json_decref(id);
    check_ok(l2, g12, "line 2 (prompt_ids)");
    /* Seeded sampling gives the same tokens batched and alone. */
    json_t *s10 = alone("--prompt-ids '500 51 383 282' --temp 0.9 -s 1234", 10);
    json_t *l6 = by_id(&A, id = json_string("seeded"));
    json_decref(id);
    check_ok(l6, s10, "line 6 (seeded, temperature 0.9)");
    json_t *n16 = alone("--temp 0 -p NAME", 16);
    json_t *l7 = by_id(&A, id = json_integer(7));
    json_decref(id);
    check_ok(l7, n16, "line 7 (text prompt NAME)");
    json_t *t6 = alone("--temp 0 --top-k 5 -p The", 6);
    json_t *l8 = by_id(&A, id = json_integer(42));
    json_decref(id);
    check_ok(l8, t6, "line 8 (JSON text prompt)");

    /* The bad lines: an error object each, naming the line. */
    check_error(by_id(&A, id = json_string("bad-field")), 3, "frobnicate"), json_decref(id);
    check_error(by_id(&A, id = json_string("bad-type")), 4, "n_predict"), json_decref(id);
    check_error(by_id(&A, id = json_integer(9)), 9, "99999"), json_decref(id);
    check_error(by_id(&A, id = json_integer(10)), 10, "JSON"), json_decref(id);
    check_error(by_id(&A, id = json_integer(11)), 11, "n_predict"), json_decref(id);
    check_error(by_id(&A, id = json_integer(12)), 12, "JSON"), json_decref(id);
    check_error(by_id(&A, id = json_integer(13)), 13, "JSON"), json_decref(id);
    check_error(by_id(&A, id = json_integer(14)), 14, "JSON"), json_decref(id);
    /* Line 15 is a text prompt with invalid UTF-8: it runs (invalid bytes become U+FFFD). */
    json_t *l15 = by_id(&A, id = json_integer(15));
    json_decref(id);
    CHECKF(!json_object_get(l15, "error") && json_array_size(json_object_get(l15, "ids")) > 0, "line 15: %s",
           json_dumps(l15, 0));
    printf("mixed file: 6 requests equal their runs alone, 8 bad lines answered with errors: ok\n");

    /* A stop string taken from the middle of line 1's text: the same prompt with it ends
     * where the string starts. */
    const char *t1 = str(l1, "text");
    size_t len1 = strlen(t1), p = len1 / 2;
    char stop[8] = {0};
    while (p + 3 < len1) {
        bool ascii = true;
        for (int i = 0; i < 3; i++)
            ascii &= (unsigned char)t1[p + i] < 0x80;
        if (ascii)
            break;
        p++;
    }
    CHECKF(p + 3 < len1, "line 1's text has no 3 ASCII bytes to stop at: %s", t1);
    memcpy(stop, t1 + p, 3);
    size_t cut = (size_t)(strstr(t1, stop) - t1);
    json_t *stop_line = json_pack("{s:s, s:s, s:[s, s]}", "id", "stop", "prompt", "The following options are supported:",
                                  "stop", stop, "never-appears-in-it");
    char *sl = json_dumps(stop_line, JSON_COMPACT);
    snprintf(fileB, sizeof fileB, "%s/batch-b.jsonl", dir);
    size_t blen = strlen(body);
    snprintf(body + blen, sizeof body - blen, "%s\n", sl); /* line 16 */
    write_file(fileB, body);
    free(sl);
    json_decref(stop_line);

    results B;
    batch(fileB, "--ordered", &B);
    CHECKF(B.n == 15, "%d results for 15 request lines", B.n);
    /* Input order: the ids of lines 1..16 (blank line 5 has none). */
    const char *order = "[1, \"ids\", \"bad-field\", \"bad-type\", \"seeded\", 7, 42, 9, 10, 11, 12, 13, 14, 15, "
                        "\"stop\"]";
    json_t *want = json_loads(order, 0, NULL);
    for (int i = 0; i < B.n; i++) {
        json_t *got = json_object_get(B.obj[i], "id");
        CHECKF(json_equal(got, json_array_get(want, (size_t)i)), "--ordered: result %d has id %s, expected %s", i,
               json_dumps(got, JSON_ENCODE_ANY), json_dumps(json_array_get(want, (size_t)i), JSON_ENCODE_ANY));
        if (i < B.n - 1) { /* the same results as the unordered run */
            json_t *a = by_id(&A, got);
            CHECKF(same(json_object_get(a, "ids"), json_object_get(B.obj[i], "ids")) &&
                       same(json_object_get(a, "text"), json_object_get(B.obj[i], "text")) &&
                       same(json_object_get(a, "error"), json_object_get(B.obj[i], "error")),
                   "--ordered changed the result of id %s", json_dumps(got, JSON_ENCODE_ANY));
        }
    }
    json_decref(want);
    printf("--ordered: input order, same results: ok\n");

    json_t *st = B.obj[B.n - 1];
    const char *ts = str(st, "text");
    CHECKF(strlen(ts) == cut && strncmp(ts, t1, cut) == 0, "stop \"%s\": text \"%s\", expected the first %zu bytes "
           "of \"%s\"", stop, ts, cut, t1);
    CHECKF(strcmp(str(st, "finish_reason"), "stop") == 0, "stop string: finish_reason %s", str(st, "finish_reason"));
    json_t *sids = json_object_get(st, "ids");
    size_t ns = json_array_size(sids);
    CHECKF(ns >= 1 && ns <= json_array_size(g16), "stop string: %zu ids", ns);
    for (size_t i = 0; i < ns; i++)
        CHECKF(json_equal(json_array_get(sids, i), json_array_get(g16, i)), "stop string: ids are not a prefix of "
               "line 1's");
    printf("stop string \"%s\" cuts the text at byte %zu after %zu tokens: ok\n", stop, cut, ns);

    /* A missing file: an error naming it, no output. */
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -q --batch-file '%s/no-such-batch.jsonl' 2>&1", si_exe, model, dir);
    int status;
    char *o = run(cmd, &status);
    CHECKF(status != 0 && strstr(o, "no-such-batch.jsonl"), "missing file: status %d, output %s", status, o);
    free(o);
    printf("missing file: ok\n");

    for (int i = 0; i < A.n; i++)
        json_decref(A.obj[i]);
    for (int i = 0; i < B.n; i++)
        json_decref(B.obj[i]);
    json_decref(g16), json_decref(g12), json_decref(s10), json_decref(n16), json_decref(t6);
    free(pids);
    printf("ok\n");
    return 0;
}
