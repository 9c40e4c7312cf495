/* stream-infer --batch-file: read requests (JSON objects or text prompts, one a line),
 * run them all on the batch engine, write one JSON object per request. */
#include "batch_file.h"

#include "si_config.h"

#if SI_HAVE_JANSSON

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "streaminfer/clock.h"

typedef struct run run;

typedef struct item {
    run *R;
    uint32_t line;
    json_t *id;           /* as given, else the line number */
    char *error;          /* the line is in error (never submitted, or refused) */
    /* the request */
    int32_t *prompt;
    uint32_t n_prompt;
    uint32_t n_predict;
    si_sampler_opts samp;
    si_draft_mode draft;
    uint32_t draft_max;
    char **stops;
    size_t n_stops;
    /* what it produced */
    si_detok *detok;
    int32_t *ids;
    size_t n_ids, cap_ids;
    char *text;
    size_t n_text, cap_text;
    bool stopped;         /* a stop string ended it */
    bool ran, done, written;
    bool interrupted;     /* on_token ended it for si_batch_defaults.interrupt */
    uint64_t eid;         /* the engine's id, for si_engine_cancel */
    si_request_result res;
} item;

struct run {
    const si_tokenizer *tok;
    const volatile sig_atomic_t *interrupt; /* si_batch_defaults.interrupt */
    FILE *out;
    bool ordered;
    item **items;
    size_t n_items, cap_items, next_out;
    size_t outstanding;   /* submitted, on_done not yet called */
    int out_rc;           /* first failure writing the output */
    si_error out_err;
    si_batch_summary sum;
    double ttft_sum, total_sum;
    uint32_t n_ttft;
};

static void item_free(item *it)
{
    if (!it)
        return;
    json_decref(it->id);
    free(it->error);
    free(it->prompt);
    for (size_t i = 0; i < it->n_stops; i++)
        free(it->stops[i]);
    free(it->stops);
    si_detok_free(it->detok);
    free(it->ids);
    free(it->text);
    free(it);
}

/* ---- output ---- */

static int set_new(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

static json_t *result_json(const item *it, bool with_text)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_new(o, "id", json_incref(it->id));
    if (!it->ran) { /* a line in error: never ran */
        bad |= set_new(o, "line", json_integer(it->line));
        bad |= set_new(o, "error", json_string(it->error ? it->error : "error"));
        if (bad)
            json_decref(o), o = NULL;
        return o;
    }
    const si_request_result *r = &it->res;
    if (with_text) {
        json_t *t = json_stringn(it->text ? it->text : "", it->n_text);
        bad |= set_new(o, "text", t ? t : json_string(""));
    }
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < it->n_ids; i++)
        bad |= json_array_append_new(ids, json_integer(it->ids[i]));
    bad |= set_new(o, "ids", ids);
    const char *fr = it->stopped ? "stop" : si_finish_name(r->finish);
    bad |= set_new(o, "finish_reason", json_string(fr));
    bad |= set_new(o, "prompt_tokens", json_integer(r->n_prompt));
    bad |= set_new(o, "cached_tokens", json_integer(r->n_cached));
    bad |= set_new(o, "completion_tokens", json_integer(r->n_generated));
    bad |= set_new(o, "ttft_s", r->n_generated ? json_real(r->ttft_s) : json_null());
    bad |= set_new(o, "total_s", json_real(r->total_s));
    if (r->error[0] || r->finish == SI_FINISH_ERROR) {
        bad |= set_new(o, "line", json_integer(it->line));
        json_t *m = json_string(r->error[0] ? r->error : "the request failed");
        bad |= set_new(o, "error", m ? m : json_string("the request failed (the message is not UTF-8)"));
    }
    if (bad)
        json_decref(o), o = NULL;
    return o;
}

static void write_item(run *R, item *it)
{
    json_t *o = result_json(it, R->tok != NULL);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (!s) {
        if (!R->out_rc)
            R->out_rc = si_errorf(&R->out_err, SI_ENOMEM, "out of memory writing the result of line %u", it->line);
    } else if (R->out_rc == SI_OK && (fputs(s, R->out) < 0 || fputc('\n', R->out) == EOF || fflush(R->out) != 0)) {
        R->out_rc = si_errorf(&R->out_err, SI_EIO, "writing the results failed: %s", strerror(errno));
    }
    free(s);
    it->written = true;
    /* Only the item itself stays (ordered output walks the list). */
    free(it->text), it->text = NULL;
    free(it->ids), it->ids = NULL;
    si_detok_free(it->detok), it->detok = NULL;
}

/* Write what is ready: this item (as it finishes) or the done prefix (ordered). */
static void emit(run *R, item *it)
{
    if (!R->ordered) {
        write_item(R, it);
        return;
    }
    while (R->next_out < R->n_items && R->items[R->next_out]->done) {
        item *x = R->items[R->next_out++];
        if (!x->written)
            write_item(R, x);
    }
}

/* A line that will not run: answered at once (in its place when ordered). */
static void line_error(run *R, item *it, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void line_error(run *R, item *it, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[768];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Messages may quote the line's text: keep them valid UTF-8 for json_string. */
    json_t *probe = json_string(buf);
    if (probe)
        json_decref(probe);
    free(it->error);
    it->error = strdup(probe ? buf : "the line is not valid (the message is not UTF-8)");
    it->done = true;
    R->sum.errors++;
    emit(R, it);
}

/* ---- engine callbacks ---- */

static int append_text(item *it, const char *s, size_t n)
{
    if (it->n_text + n + 1 > it->cap_text) {
        size_t cap = it->cap_text ? it->cap_text : 256;
        while (cap < it->n_text + n + 1)
            cap *= 2;
        char *t = realloc(it->text, cap);
        if (!t)
            return -1;
        it->text = t, it->cap_text = cap;
    }
    memcpy(it->text + it->n_text, s, n);
    it->n_text += n;
    it->text[it->n_text] = 0;
    return 0;
}

/* New text was appended from byte `from`: cut at the earliest stop string that ends in
 * it. True when one was found. */
static bool cut_at_stop(item *it, size_t from)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < it->n_stops; i++) {
        size_t L = strlen(it->stops[i]);
        size_t start = from >= L - 1 ? from - (L - 1) : 0;
        if (start >= it->n_text)
            continue;
        const char *p = memmem(it->text + start, it->n_text - start, it->stops[i], L);
        if (p && (size_t)(p - it->text) < best)
            best = (size_t)(p - it->text);
    }
    if (best == SIZE_MAX)
        return false;
    it->n_text = best;
    it->text[best] = 0;
    it->stopped = true;
    return true;
}

static bool on_token(void *ctx, int32_t id)
{
    item *it = ctx;
    if (it->n_ids == it->cap_ids) {
        size_t cap = it->cap_ids ? 2 * it->cap_ids : 64;
        int32_t *p = realloc(it->ids, cap * sizeof *p);
        if (!p)
            return false; /* out of memory: end it here rather than lose tokens */
        it->ids = p, it->cap_ids = cap;
    }
    it->ids[it->n_ids++] = id;
    if (it->R->interrupt && *it->R->interrupt) {
        it->interrupted = true;
        return false; /* keep the token, end the request (reported as cancelled) */
    }
    if (!it->detok || it->stopped)
        return !it->stopped;
    const char *s;
    size_t n;
    if (si_detok_push(it->detok, id, &s, &n, NULL) != SI_OK || !n)
        return true;
    size_t from = it->n_text;
    if (append_text(it, s, n) != 0)
        return false;
    return !cut_at_stop(it, from);
}

static void on_done(void *ctx, const si_request_result *r)
{
    item *it = ctx;
    run *R = it->R;
    it->res = *r;
    if (it->detok && !it->stopped) {
        const char *s;
        size_t n;
        si_detok_flush(it->detok, &s, &n);
        size_t from = it->n_text;
        if (n && append_text(it, s, n) == 0)
            cut_at_stop(it, from);
    }
    if (it->stopped && (r->finish == SI_FINISH_LENGTH || r->finish == SI_FINISH_STOP))
        it->res.finish = SI_FINISH_STOP;
    else if (it->interrupted && r->finish == SI_FINISH_STOP) /* its on_token said stop: Ctrl-C */
        it->res.finish = SI_FINISH_CANCELLED;
    it->done = true;
    R->outstanding--;
    si_batch_summary *S = &R->sum;
    S->by_finish[it->res.finish < SI_FINISH_N_ ? it->res.finish : SI_FINISH_ERROR]++;
    if (it->res.finish == SI_FINISH_ERROR)
        S->errors++;
    S->prompt_tokens += r->n_prompt;
    S->cached_tokens += r->n_cached;
    S->completion_tokens += r->n_generated;
    R->total_sum += r->total_s;
    if (r->total_s > S->total_max_s)
        S->total_max_s = r->total_s;
    if (r->n_generated) {
        R->ttft_sum += r->ttft_s;
        R->n_ttft++;
        if (r->ttft_s > S->ttft_max_s)
            S->ttft_max_s = r->ttft_s;
    }
    emit(R, it);
}

/* ---- parsing a line ---- */

static const char *const known_fields[] = {"id", "prompt", "prompt_ids", "n_predict", "temperature", "top_k",
                                           "top_p", "min_p", "repeat_penalty", "seed", "stop", "draft",
                                           "draft_max"};

/* Integer field in [lo, hi]; false (with *why) when present and wrong. */
static bool get_int(json_t *o, const char *key, long long lo, long long hi, long long *v, bool *present,
                    char *why, size_t why_n)
{
    json_t *x = json_object_get(o, key);
    *present = x != NULL;
    if (!x)
        return true;
    if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi) {
        snprintf(why, why_n, "%s must be an integer from %lld to %lld", key, lo, hi);
        return false;
    }
    *v = json_integer_value(x);
    return true;
}

/* Number field; ok(v) says whether the value is in range (NaN never is). */
static bool get_num(json_t *o, const char *key, bool (*ok)(double), const char *range, float *out, char *why,
                    size_t why_n)
{
    json_t *x = json_object_get(o, key);
    if (!x)
        return true;
    double v = json_number_value(x);
    if (!json_is_number(x) || !isfinite(v) || !ok(v)) {
        snprintf(why, why_n, "%s must be a number %s", key, range);
        return false;
    }
    *out = (float)v;
    return true;
}

static bool ok_temp(double v) { return v >= 0 && v <= 1e6; }
static bool ok_top_p(double v) { return v > 0 && v <= 1; }
static bool ok_min_p(double v) { return v >= 0 && v <= 1; }
static bool ok_penalty(double v) { return v > 0 && v <= 1e6; }

static int add_stop(item *it, const char *s, size_t len, char *why, size_t why_n)
{
    if (!len) {
        snprintf(why, why_n, "stop strings must not be empty");
        return -1;
    }
    char **st = realloc(it->stops, (it->n_stops + 1) * sizeof *st);
    if (!st)
        return snprintf(why, why_n, "out of memory"), -1;
    it->stops = st;
    if (!(st[it->n_stops] = strndup(s, len)))
        return snprintf(why, why_n, "out of memory"), -1;
    it->n_stops++;
    return 0;
}

static int tokenize_prompt(run *R, const si_batch_defaults *d, item *it, const char *text, size_t len, char *why,
                           size_t why_n)
{
    if (!R->tok) {
        snprintf(why, why_n, "this model has no tokenizer, so text prompts cannot run: give prompt_ids");
        return -1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    si_error e = {0};
    if (si_tokenize(R->tok, text, len, d->add_bos, d->special, &ids, &n, &e) != SI_OK) {
        snprintf(why, why_n, "the prompt cannot be tokenized: %s", e.msg);
        return -1;
    }
    if (n > UINT32_MAX) {
        free(ids);
        snprintf(why, why_n, "the prompt is too long");
        return -1;
    }
    it->prompt = ids;
    it->n_prompt = (uint32_t)n;
    return 0;
}

/* Fill it from a JSON line; false with *why on an error. */
static bool parse_json_line(run *R, const si_batch_defaults *d, item *it, const char *line, size_t len, char *why,
                            size_t why_n)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(why, why_n, "invalid JSON at column %d: %s", je.column, je.text);
        return false;
    }
    bool ok = false;
    if (!json_is_object(o)) {
        snprintf(why, why_n, "a line starting with '{' must be one JSON object");
        goto out;
    }
    json_t *id = json_object_get(o, "id");
    if (id) {
        if (!json_is_string(id) && !json_is_number(id)) {
            snprintf(why, why_n, "id must be a string or a number");
            goto out;
        }
        json_decref(it->id);
        it->id = json_incref(id);
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof known_fields / sizeof *known_fields && !known; i++)
            known = strcmp(key, known_fields[i]) == 0;
        if (!known) {
            /* keys are valid UTF-8 (jansson checked); quote at most 64 bytes, whole characters */
            int k = (int)strlen(key);
            if (k > 64)
                for (k = 64; k > 0 && ((unsigned char)key[k] & 0xC0) == 0x80; k--)
                    ;
            snprintf(why, why_n, "unknown field \"%.*s\" (fields: id, prompt, prompt_ids, n_predict, temperature, "
                     "top_k, top_p, min_p, repeat_penalty, seed, stop, draft, draft_max)", k, key);
            goto out;
        }
    }
    long long v;
    bool present;
    if (!get_int(o, "n_predict", -1, INT32_MAX, &v, &present, why, why_n))
        goto out;
    if (present)
        it->n_predict = v < 0 ? SI_N_PREDICT_ALL : (uint32_t)v;
    if (!get_int(o, "top_k", 0, INT32_MAX, &v, &present, why, why_n))
        goto out;
    if (present)
        it->samp.top_k = (int32_t)v;
    if (!get_int(o, "seed", 0, INT64_MAX, &v, &present, why, why_n))
        goto out;
    if (present)
        it->samp.seed = (uint64_t)v;
    if (!get_int(o, "draft_max", 1, SI_DRAFT_MAX_NODES, &v, &present, why, why_n))
        goto out;
    if (present)
        it->draft_max = (uint32_t)v;
    json_t *dm = json_object_get(o, "draft");
    if (dm && (!json_is_string(dm) || si_draft_mode_parse(json_string_value(dm)) < 0)) {
        snprintf(why, why_n, "draft must be \"none\", \"lookup\", \"lookahead\" or \"auto\"");
        goto out;
    }
    if (dm)
        it->draft = (si_draft_mode)si_draft_mode_parse(json_string_value(dm));
    if (!get_num(o, "temperature", ok_temp, ">= 0", &it->samp.temp, why, why_n) ||
        !get_num(o, "top_p", ok_top_p, "in (0, 1]", &it->samp.top_p, why, why_n) ||
        !get_num(o, "min_p", ok_min_p, "in [0, 1]", &it->samp.min_p, why, why_n) ||
        !get_num(o, "repeat_penalty", ok_penalty, "> 0", &it->samp.repeat_penalty, why, why_n))
        goto out;
    json_t *stop = json_object_get(o, "stop");
    if (stop) {
        if (json_is_string(stop)) {
            if (add_stop(it, json_string_value(stop), json_string_length(stop), why, why_n))
                goto out;
        } else if (json_is_array(stop)) {
            size_t i;
            json_t *s;
            json_array_foreach(stop, i, s)
            {
                if (!json_is_string(s)) {
                    snprintf(why, why_n, "stop must be a string or an array of strings");
                    goto out;
                }
                if (add_stop(it, json_string_value(s), json_string_length(s), why, why_n))
                    goto out;
            }
        } else {
            snprintf(why, why_n, "stop must be a string or an array of strings");
            goto out;
        }
        if (it->n_stops && !R->tok) {
            snprintf(why, why_n, "this model has no tokenizer, so stop strings cannot be matched");
            goto out;
        }
    }
    json_t *p = json_object_get(o, "prompt"), *pi = json_object_get(o, "prompt_ids");
    if (p && pi) {
        snprintf(why, why_n, "give either prompt or prompt_ids, not both");
        goto out;
    }
    if (!p && !pi) {
        snprintf(why, why_n, "no prompt: give prompt (a string) or prompt_ids (an array of token ids)");
        goto out;
    }
    if (p) {
        if (!json_is_string(p)) {
            snprintf(why, why_n, "prompt must be a string");
            goto out;
        }
        if (tokenize_prompt(R, d, it, json_string_value(p), json_string_length(p), why, why_n))
            goto out;
    } else {
        if (!json_is_array(pi)) {
            snprintf(why, why_n, "prompt_ids must be an array of token ids");
            goto out;
        }
        size_t n = json_array_size(pi);
        if (n > UINT32_MAX / 2) {
            snprintf(why, why_n, "prompt_ids is too long");
            goto out;
        }
        it->prompt = malloc((n ? n : 1) * sizeof *it->prompt);
        if (!it->prompt) {
            snprintf(why, why_n, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(pi, i);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX) {
                snprintf(why, why_n, "prompt_ids[%zu] is not a token id (an integer >= 0)", i);
                goto out;
            }
            it->prompt[i] = (int32_t)json_integer_value(x);
        }
        it->n_prompt = (uint32_t)n;
    }
    ok = true;
out:
    json_decref(o);
    return ok;
}

/* One line as si_run_batch_file reads it (after its line ending and byte order mark
 * are removed), parsed without a model: 1 a request, 0 blank, -1 an error (why). */
int si_batch_parse_line(const si_tokenizer *tok, const si_batch_defaults *d, const char *s, size_t len, char *why,
                        size_t why_n)
{
    bool blank = true;
    for (size_t i = 0; i < len && blank; i++)
        blank = s[i] == ' ' || s[i] == '\t';
    if (blank)
        return 0;
    run R = {.tok = tok};
    item *it = calloc(1, sizeof *it);
    if (!it) {
        snprintf(why, why_n, "out of memory");
        return -1;
    }
    it->R = &R;
    it->line = 1;
    it->id = json_integer(1);
    it->samp = d->samp;
    it->n_predict = d->n_predict;
    it->draft = d->draft;
    it->draft_max = d->draft_max;
    why[0] = 0;
    bool ok = s[0] == '{' ? parse_json_line(&R, d, it, s, len, why, why_n)
                         : tokenize_prompt(&R, d, it, s, len, why, why_n) == 0;
    item_free(it);
    return ok ? 1 : -1;
}

/* ---- running ---- */

static int add_item(run *R, item *it)
{
    if (R->n_items == R->cap_items) {
        size_t cap = R->cap_items ? 2 * R->cap_items : 64;
        item **p = realloc(R->items, cap * sizeof *p);
        if (!p)
            return -1;
        R->items = p, R->cap_items = cap;
    }
    R->items[R->n_items++] = it;
    return 0;
}

/* Submit it, running passes while the engine's queue is full. */
static int submit(run *R, si_engine *e, item *it, int *step_rc, si_error *step_err)
{
    si_request rq = {.prompt = it->prompt, .n_prompt = it->n_prompt, .n_predict = it->n_predict,
                     .sampler = it->samp, .draft = it->draft, .draft_max = it->draft_max,
                     .on_token = on_token, .on_done = on_done, .ctx = it};
    for (;;) {
        si_error se = {0};
        int rc = si_engine_submit(e, &rq, &it->eid, &se);
        if (rc == SI_OK) {
            it->ran = true;
            R->outstanding++;
            R->sum.requests++;
            break;
        }
        if (rc != SI_EBUSY_QUEUE) {
            line_error(R, it, "%s", se.msg);
            break;
        }
        bool idle = false;
        si_error err = {0};
        int src = si_engine_step(e, &idle, &err);
        if (src < 0 && *step_rc == SI_OK)
            *step_rc = src, *step_err = err;
        if (idle) { /* nothing runs, yet the queue is full: someone else's requests wait */
            line_error(R, it, "the engine's queue is full: %s", se.msg);
            break;
        }
    }
    free(it->prompt); /* the engine has its own copy */
    it->prompt = NULL;
    return SI_OK;
}

int si_run_batch_file(si_engine *e, const si_tokenizer *tok, const char *path, const si_batch_defaults *d,
                      bool ordered, FILE *out, si_batch_summary *sum, si_error *err)
{
    double t0 = si_now_s();
    if (sum)
        *sum = (si_batch_summary){0};
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (!f)
        return si_errorf(err, SI_EIO, "--batch-file %s: cannot open: %s", path, strerror(errno));
    run R = {.tok = tok, .interrupt = d->interrupt, .out = out, .ordered = ordered};
    int rc = SI_OK, step_rc = SI_OK;
    si_error step_err = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint32_t lineno = 0;
    char why[768];
    errno = 0;
    while (!(R.interrupt && *R.interrupt) && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *s = line;
        if (lineno == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) /* a UTF-8 byte order mark */
            s += 3, len -= 3;
        bool blank = true;
        for (ssize_t i = 0; i < len && blank; i++)
            blank = s[i] == ' ' || s[i] == '\t';
        if (blank)
            continue;
        item *it = calloc(1, sizeof *it);
        if (!it || add_item(&R, it) != 0) {
            free(it);
            rc = si_errorf(err, SI_ENOMEM, "--batch-file %s: out of memory at line %u", path, lineno);
            break;
        }
        it->R = &R;
        it->line = lineno;
        it->id = json_integer(lineno);
        it->samp = d->samp;
        it->n_predict = d->n_predict;
        it->draft = d->draft;
        it->draft_max = d->draft_max;
        R.sum.lines++;
        why[0] = 0;
        bool ok = s[0] == '{' ? parse_json_line(&R, d, it, s, (size_t)len, why, sizeof why)
                             : tokenize_prompt(&R, d, it, s, (size_t)len, why, sizeof why) == 0;
        if (ok && tok && !(it->detok = si_detok_new(tok, 0))) {
            ok = false;
            snprintf(why, sizeof why, "out of memory");
        }
        if (!ok) {
            line_error(&R, it, "%s", why);
            continue;
        }
        submit(&R, e, it, &step_rc, &step_err);
        errno = 0;
    }
    if (rc == SI_OK && !(R.interrupt && *R.interrupt) && ferror(f))
        rc = si_errorf(err, SI_EIO, "--batch-file %s: cannot read: %s (line %u)", path,
                       strerror(errno ? errno : EIO), lineno + 1);
    free(line);
    if (!is_stdin)
        fclose(f);
    /* Run everything that was submitted. A failed pass ends the requests in it (they
     * report the error); the others go on. */
    bool cancelled = false;
    while (R.outstanding) {
        if (R.interrupt && *R.interrupt && !cancelled) {
            /* Interrupted: what waits is cancelled, what runs was cancelled by the model's
             * should_stop in the pass in flight (or ends at the pass boundary);
             * each still gets its object (finish_reason "cancelled", the text so far). */
            for (size_t i = 0; i < R.n_items; i++)
                if (R.items[i]->ran && !R.items[i]->done)
                    si_engine_cancel(e, R.items[i]->eid);
            cancelled = true;
        }
        bool idle = false;
        si_error se = {0};
        int src = si_engine_step(e, &idle, &se);
        if (src < 0 && step_rc == SI_OK)
            step_rc = src, step_err = se;
        if (idle && R.outstanding) {
            /* Cannot happen with the engine's admission rules; never return with
             * requests that still point at our items. */
            si_engine_drain(e, NULL);
            if (R.outstanding)
                return si_errorf(err, SI_EINVAL, "--batch-file %s: the engine stopped with %zu requests left", path,
                                 R.outstanding);
        }
    }
    if (R.ordered)
        emit(&R, NULL); /* everything is done now */
    for (size_t i = 0; i < R.n_items; i++)
            if (!R.items[i]->written)
                write_item(&R, R.items[i]);
    if (rc == SI_OK && step_rc != SI_OK)
        rc = si_errorf(err, step_rc, "--batch-file %s: a model step failed: %s", path, step_err.msg);
    if (rc == SI_OK && R.out_rc != SI_OK)
        rc = si_errorf(err, R.out_rc, "--batch-file %s: %s", path, R.out_err.msg);
    R.sum.wall_s = si_now_s() - t0;
    if (R.sum.requests)
        R.sum.total_mean_s = R.total_sum / R.sum.requests;
    if (R.n_ttft)
        R.sum.ttft_mean_s = R.ttft_sum / R.n_ttft;
    if (sum)
        *sum = R.sum;
    for (size_t i = 0; i < R.n_items; i++)
        item_free(R.items[i]);
    free(R.items);
    return rc;
}

#else /* !SI_HAVE_JANSSON */

int si_run_batch_file(si_engine *e, const si_tokenizer *tok, const char *path, const si_batch_defaults *d,
                      bool ordered, FILE *out, si_batch_summary *sum, si_error *err)
{
    (void)e, (void)tok, (void)d, (void)ordered, (void)out;
    if (sum)
        *sum = (si_batch_summary){0};
    return si_errorf(err, SI_EUNSUPPORTED, "--batch-file %s: this build has no JSON support (jansson)", path);
}

int si_batch_parse_line(const si_tokenizer *tok, const si_batch_defaults *d, const char *s, size_t len, char *why,
                        size_t why_n)
{
    (void)tok, (void)d, (void)s, (void)len;
    snprintf(why, why_n, "this build has no JSON support (jansson)");
    return -1;
}

#endif
