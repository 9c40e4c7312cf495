/* The batch engine: one loop over passes shared by every request.
 *
 *   queue   requests waiting for admission, FIFO            (under lock)
 *   slot[s] sequence s of the KV pool: free, cached (a finished request's evaluated
 *           tokens, kept as a prompt cache) or running a request
 *   a pass  next tokens of generating requests, then prompt chunks, one model step,
 *           sample per request, retire, admit */
#include "streaminfer/engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streaminfer/clock.h"

typedef struct req req;

#define NODE_WINDOW (-2) /* b_node of a lookahead window token */

typedef enum slot_state { SLOT_FREE = 0, SLOT_CACHED, SLOT_RUNNING, SLOT_DRAFT } slot_state;

typedef struct slot {
    slot_state state;
    req *r;          /* SLOT_RUNNING; SLOT_DRAFT: a branch of r's guesses for one pass */
    int32_t *toks;   /* [n_toks] tokens whose rows are in the pool, at positions 0..n_toks-1 */
    uint32_t n_toks, cap;
    uint64_t used_at; /* pass of last use: the least recently used cached slot goes first */
} slot;

struct req {
    uint64_t id;
    si_request p;     /* prompt and force point at owned copies */
    si_sampler *samp;
    int seq;          /* slot, -1 while queued */
    uint32_t n_fed;   /* prompt tokens in the pool (shared ones included) */
    uint32_t n_made;  /* tokens produced */
    int32_t pending;  /* produced, to be evaluated next pass; -1 none */
    bool cancel;      /* asked for by si_engine_cancel (under lock) */
    si_finish finish;
    char error[512];
    double t_submit, t_admit, t_first, t_done;
    uint32_t n_cached;
    req *next;        /* queue link */
    /* this pass's guesses: a tree below the pending token (batch index root) */
    si_draft dr;
    uint32_t dr_root;
    si_lookahead *la;                       /* lookahead's window and pool, once it drafts */
    uint32_t la_tok0, la_n;                 /* this pass's window: batch index, tokens */
    uint32_t dr_tok[SI_DRAFT_MAX_NODES];    /* batch index of each node */
    si_seq_set dr_bits[SI_DRAFT_MAX_NODES]; /* the branch sequences through each node */
    int dr_leaf_seq[SI_DRAFT_MAX_NODES];    /* a branch sequence through each node */
};

struct si_engine {
    si_llama *m;
    uint32_t n_vocab, n_batch, n_parallel, max_queued, reserve;
    int32_t *eog;
    uint32_t n_eog;
    bool no_cache;
    slot slot[SI_MAX_SEQ];
    req *running[SI_MAX_SEQ]; /* admission order; n_running of them */
    uint32_t n_running;
    float *logits;            /* [max rows][n_vocab] */
    /* the step being built */
    int32_t *b_id;
    uint32_t *b_pos;
    si_seq_set *b_seq;
    bool *b_logits;
    req **b_req;
    int16_t *b_node;          /* the draft node a token is, -1 (none) or NODE_WINDOW */
    uint32_t *b_row;          /* its logits row */
    int32_t *hist;            /* a sequence's tokens, for lookup */
    uint32_t hist_cap;
    uint32_t draft_max, draft_branches, draft_width;
    double compute_ratio;
    double last_compute_s, last_pass_s; /* the model's totals after the previous pass */
    uint64_t pass_no;

    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t wake;
    req *q_head, *q_tail;
    uint32_t n_queued;
    uint64_t next_id;
    bool stop;
    si_engine_stats st;
    si_llama_stats model_st;                        /* the model's, at the end of the last pass */
    si_sched_file_stats file_st[SI_SCHED_MAX_FILES]; /* [n_files], likewise */
    uint32_t n_files;
};

static const char *const finish_names[SI_FINISH_N_] = {"none", "stop", "length", "cancelled", "timeout", "error"};
const char *si_finish_name(si_finish f) { return f >= 0 && f < SI_FINISH_N_ ? finish_names[f] : "?"; }

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static void publish_pool(si_engine *e);
static void publish_model(si_engine *e);
typedef struct done_list done_list;
static bool emit(si_engine *e, req *r, int32_t id, done_list *dl);

int si_engine_create(si_engine **out, si_llama *m, const si_engine_opts *o, si_error *err)
{
    *out = NULL;
    si_engine *e = calloc(1, sizeof *e);
    SI_CHECK(!e, err, SI_ENOMEM, "out of memory");
    e->m = m;
    e->n_vocab = si_llama_hparams_of(m)->n_vocab;
    e->n_batch = si_llama_plan_of(m)->n_batch;
    uint32_t n_cells = si_kv_n_cells(si_llama_kv(m)), rows = si_llama_max_logits_rows(m);
    uint32_t par = o->n_parallel;
    if (!par) { /* 4, fewer when the pool cannot give each 256 cells */
        par = n_cells / 256 < 4 ? n_cells / 256 : 4;
        par = par ? par : 1;
    }
    int rc = SI_OK;
    if (par > SI_MAX_SEQ / 2)
        rc = si_errorf(err, SI_EINVAL, "--parallel %u: at most %u sequences can run at once", par, SI_MAX_SEQ / 2);
    else if (par > rows || par > e->n_batch)
        rc = si_errorf(err, SI_EINVAL,
                       "--parallel %u: the memory plan holds %u rows of logits and steps of %u tokens per pass", par,
                       rows, e->n_batch);
    e->n_parallel = par;
    e->max_queued = o->max_queued;
    e->reserve = o->reserve;
    e->no_cache = o->no_prompt_cache;
    e->next_id = 1;
    e->eog = malloc((o->n_eog + 1) * sizeof *e->eog);
    if (e->eog && o->n_eog)
        memcpy(e->eog, o->eog_ids, o->n_eog * sizeof *e->eog);
    e->n_eog = o->n_eog;
    size_t B = e->n_batch;
    e->logits = malloc((size_t)rows * e->n_vocab * sizeof(float));
    e->b_id = malloc(B * sizeof *e->b_id);
    e->b_pos = malloc(B * sizeof *e->b_pos);
    e->b_seq = malloc(B * sizeof *e->b_seq);
    e->b_logits = malloc(B * sizeof *e->b_logits);
    e->b_req = malloc(B * sizeof *e->b_req);
    e->b_node = malloc(B * sizeof *e->b_node);
    e->b_row = malloc(B * sizeof *e->b_row);
    e->draft_max = o->draft_max ? o->draft_max : 8;
    e->draft_branches = o->draft_branches ? o->draft_branches : 4;
    e->draft_width = e->draft_max < 4 ? e->draft_max : 4;
    e->compute_ratio = o->compute_ratio;
    if (rc == SI_OK && (!e->eog || !e->logits || !e->b_id || !e->b_pos || !e->b_seq || !e->b_logits || !e->b_req ||
                        !e->b_node || !e->b_row))
        rc = si_errorf(err, SI_ENOMEM, "out of memory for the batch engine");
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    if (rc < 0) {
        si_engine_free(e);
        return rc;
    }
    publish_pool(e);
    publish_model(e);
    *out = e;
    return SI_OK;
}

static void req_free(req *r)
{
    if (!r)
        return;
    si_sampler_free(r->samp);
    free(r->la);
    free((void *)r->p.prompt);
    free((void *)r->p.force);
    free(r);
}

/* ---- finishing ---- */

static void slot_drop(si_engine *e, int s)
{
    si_kv_seq_rm(si_llama_kv(e->m), (uint32_t)s, 0, SI_POS_END);
    e->slot[s].state = SLOT_FREE;
    e->slot[s].n_toks = 0;
    e->slot[s].r = NULL;
}

/* last_id travels in a field of its own: the produced token not evaluated. */
struct done_list {
    req *items[2 * SI_MAX_SEQ + 2];
    int32_t last[2 * SI_MAX_SEQ + 2];
    uint32_t n;
};

/* End a running request: its slot becomes a prompt cache (or is freed). */
static void retire(si_engine *e, req *r, si_finish f, int32_t last_id, done_list *dl)
{
    r->finish = f;
    slot *s = &e->slot[r->seq];
    bool keep = !e->no_cache && (f == SI_FINISH_STOP || f == SI_FINISH_LENGTH) && s->n_toks > 0;
    if (keep) {
        s->state = SLOT_CACHED;
        s->r = NULL;
        s->used_at = e->pass_no;
    } else {
        slot_drop(e, r->seq);
    }
    pthread_mutex_lock(&e->lock);
    for (uint32_t i = 0; i < e->n_running; i++)
        if (e->running[i] == r) {
            memmove(e->running + i, e->running + i + 1, (e->n_running - i - 1) * sizeof *e->running);
            e->n_running--;
            break;
        }
    e->st.active = e->n_running;
    pthread_mutex_unlock(&e->lock);
    r->pending = -1;
    dl->items[dl->n] = r;
    dl->last[dl->n++] = last_id;
}

static void deliver_all(si_engine *e, done_list *dl)
{
    for (uint32_t i = 0; i < dl->n; i++) {
        req *r = dl->items[i];
        int32_t last = dl->last[i];
        r->t_done = si_now_s();
        si_request_result res = {.id = r->id, .finish = r->finish, .n_prompt = r->p.n_prompt,
                                 .n_cached = r->n_cached, .n_generated = r->n_made, .last_id = last};
        res.queued_s = (r->t_admit > 0 ? r->t_admit : r->t_done) - r->t_submit;
        res.ttft_s = r->t_first > 0 ? r->t_first - r->t_submit : 0;
        res.total_s = r->t_done - r->t_submit;
        snprintf(res.error, sizeof res.error, "%s", r->error);
        pthread_mutex_lock(&e->lock);
        e->st.requests[r->finish]++;
        pthread_mutex_unlock(&e->lock);
        if (r->p.on_done)
            r->p.on_done(r->p.ctx, &res);
        req_free(r);
    }
    dl->n = 0;
}

/* ---- submitting ---- */

int si_engine_submit(si_engine *e, const si_request *p, uint64_t *id, si_error *err)
{
    uint32_t n_cells = si_kv_n_cells(si_llama_kv(e->m));
    const char *why = NULL;
    char buf[160];
    if (!p->n_prompt || !p->prompt)
        why = "the prompt is empty";
    else if (p->n_prompt >= n_cells) {
        snprintf(buf, sizeof buf, "the prompt has %u tokens; the context holds %u (prompt and at least one more)",
                 p->n_prompt, n_cells);
        why = buf;
    }
    for (uint32_t i = 0; !why && i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || (uint32_t)p->prompt[i] >= e->n_vocab) {
            snprintf(buf, sizeof buf, "prompt token %u: id %d is out of range (vocabulary of %u)", i, p->prompt[i],
                     e->n_vocab);
            why = buf;
        }
    for (uint32_t i = 0; !why && i < p->n_force; i++)
        if (p->force[i] < 0 || (uint32_t)p->force[i] >= e->n_vocab) {
            snprintf(buf, sizeof buf, "forced token %u: id %d is out of range (vocabulary of %u)", i, p->force[i],
                     e->n_vocab);
            why = buf;
        }
    if (!why && p->all_logits && si_llama_max_logits_rows(e->m) < e->n_batch)
        why = "every token's logits were asked for, but the model was opened without all_logits";
    if (why) {
        pthread_mutex_lock(&e->lock);
        e->st.rejected++;
        pthread_mutex_unlock(&e->lock);
        return si_errorf(err, SI_EINVAL, "%s", why);
    }
    req *r = calloc(1, sizeof *r);
    int32_t *prompt = malloc(p->n_prompt * sizeof *prompt);
    int32_t *force = p->n_force ? malloc(p->n_force * sizeof *force) : NULL;
    si_sampler *samp = si_sampler_new(&p->sampler, e->n_vocab);
    if (!r || !prompt || (p->n_force && !force) || !samp) {
        free(r), free(prompt), free(force), si_sampler_free(samp);
        return si_errorf(err, SI_ENOMEM, "out of memory for a request");
    }
    memcpy(prompt, p->prompt, p->n_prompt * sizeof *prompt);
    if (force)
        memcpy(force, p->force, p->n_force * sizeof *force);
    r->p = *p;
    r->p.prompt = prompt;
    r->p.force = force;
    r->samp = samp;
    r->seq = -1;
    r->pending = -1;
    r->t_submit = si_now_s();
    pthread_mutex_lock(&e->lock);
    if (e->max_queued && e->n_queued >= e->max_queued) {
        e->st.rejected++;
        uint32_t q = e->n_queued;
        pthread_mutex_unlock(&e->lock);
        req_free(r);
        return si_errorf(err, SI_EBUSY_QUEUE, "%u requests are already waiting (--max-queued %u)", q, e->max_queued);
    }
    r->id = e->next_id++;
    if (e->q_tail)
        e->q_tail->next = r;
    else
        e->q_head = r;
    e->q_tail = r;
    e->n_queued++;
    e->st.queued = e->n_queued;
    if (id)
        *id = r->id;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    return SI_OK;
}

void si_engine_cancel(si_engine *e, uint64_t id)
{
    pthread_mutex_lock(&e->lock);
    for (req *r = e->q_head; r; r = r->next)
        if (r->id == id)
            r->cancel = true;
    for (uint32_t i = 0; i < e->n_running; i++)
        if (e->running[i]->id == id)
            e->running[i]->cancel = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

/* ---- admission ---- */

static uint32_t common_prefix(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb)
{
    uint32_t n = 0;
    while (n < na && n < nb && a[n] == b[n])
        n++;
    return n;
}

static si_seq_set cached_set(const si_engine *e)
{
    si_seq_set s = 0;
    for (int i = 0; i < SI_MAX_SEQ; i++)
        if (e->slot[i].state == SLOT_CACHED)
            s |= SI_SEQ(i);
    return s;
}

/* Drop the least recently used cached slot (not keep); false when there is none. */
static bool evict_one(si_engine *e, int keep)
{
    int best = -1;
    for (int i = 0; i < SI_MAX_SEQ; i++)
        if (i != keep && e->slot[i].state == SLOT_CACHED && (best < 0 || e->slot[i].used_at < e->slot[best].used_at))
            best = i;
    if (best < 0)
        return false;
    slot_drop(e, best);
    return true;
}

static int slot_reserve(slot *s, uint32_t n)
{
    if (n <= s->cap)
        return SI_OK;
    uint32_t cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap *= 2;
    int32_t *t = realloc(s->toks, cap * sizeof *t);
    if (!t)
        return SI_ENOMEM;
    s->toks = t;
    s->cap = cap;
    return SI_OK;
}

/* Admit the head of the queue if the pool has room; false when it must wait. */
static bool admit_one(si_engine *e, req *r)
{
    si_kv *kv = si_llama_kv(e->m);
    /* The longest prompt prefix already in the pool (at least one token left to evaluate). */
    int src = -1;
    uint32_t lcp = 0, limit = r->p.all_logits ? 0 : r->p.n_prompt - 1;
    for (int i = 0; i < SI_MAX_SEQ && limit; i++) {
        if (e->slot[i].state == SLOT_FREE)
            continue;
        uint32_t n = common_prefix(e->slot[i].toks, e->slot[i].n_toks, r->p.prompt, limit);
        if (n > lcp)
            lcp = n, src = i;
    }
    uint32_t reserve = e->reserve ? e->reserve : min_u32(r->p.n_predict, 64);
    uint32_t need = r->p.n_prompt - lcp + (reserve ? reserve : 1);
    si_seq_set cached = cached_set(e);
    if (src >= 0 && e->slot[src].state == SLOT_CACHED)
        cached &= ~SI_SEQ(src);
    uint32_t room = si_kv_n_free(kv) + si_kv_n_only(kv, cached);
    if (room < need && e->n_running > 0)
        return false; /* wait for running requests to end */
    /* A slot: the cached source itself, else a free one, else the oldest cached one. */
    int s = src >= 0 && e->slot[src].state == SLOT_CACHED ? src : -1;
    for (int i = 0; i < SI_MAX_SEQ && s < 0; i++)
        if (e->slot[i].state == SLOT_FREE)
            s = i;
    if (s < 0) {
        evict_one(e, src);
        for (int i = 0; i < SI_MAX_SEQ && s < 0; i++)
            if (e->slot[i].state == SLOT_FREE)
                s = i;
    }
    if (s < 0 || slot_reserve(&e->slot[s], r->p.n_prompt + 1) != SI_OK)
        return false;
    slot *sl = &e->slot[s];
    if (s == src) {
        si_kv_seq_rm(kv, (uint32_t)s, lcp, SI_POS_END);
    } else if (src >= 0 && lcp) {
        si_kv_seq_cp(kv, (uint32_t)src, (uint32_t)s, 0, lcp);
        memcpy(sl->toks, r->p.prompt, lcp * sizeof *sl->toks);
    } else {
        lcp = 0;
    }
    sl->n_toks = lcp;
    sl->state = SLOT_RUNNING;
    sl->r = r;
    sl->used_at = e->pass_no;
    while (si_kv_n_free(kv) < need && evict_one(e, s))
        ;
    r->seq = s;
    r->n_fed = lcp;
    r->n_cached = lcp;
    r->t_admit = si_now_s();
    for (uint32_t i = 0; i < lcp; i++)
        si_sampler_accept(r->samp, r->p.prompt[i]);
    return true;
}

/* Cancellations, timeouts, admissions: the start of every pass. */
static void housekeeping(si_engine *e, done_list *dl)
{
    double now = si_now_s();
    for (uint32_t i = 0; i < e->n_running;) {
        req *r = e->running[i];
        pthread_mutex_lock(&e->lock);
        bool cancel = r->cancel || e->stop;
        pthread_mutex_unlock(&e->lock);
        bool late = r->p.timeout_s > 0 && now - r->t_submit > r->p.timeout_s;
        if (cancel || late)
            retire(e, r, cancel ? SI_FINISH_CANCELLED : SI_FINISH_TIMEOUT, r->pending, dl);
        else
            i++;
    }
    pthread_mutex_lock(&e->lock);
    /* Queued requests that were cancelled or timed out leave without running; the
     * last one kept is the new tail. */
    req *kept = NULL;
    for (req **pp = &e->q_head; *pp;) {
        req *r = *pp;
        bool late = r->p.timeout_s > 0 && now - r->t_submit > r->p.timeout_s;
        if ((r->cancel || e->stop || late) && dl->n < SI_MAX_SEQ) {
            *pp = r->next;
            e->n_queued--;
            r->finish = r->cancel || e->stop ? SI_FINISH_CANCELLED : SI_FINISH_TIMEOUT;
            dl->items[dl->n] = r;
            dl->last[dl->n++] = -1;
        } else {
            kept = r;
            pp = &r->next;
        }
    }
    e->q_tail = kept;
    while (!e->stop && e->q_head && e->n_running < e->n_parallel) {
        req *r = e->q_head;
        if (!admit_one(e, r))
            break;
        e->q_head = r->next;
        if (!e->q_head)
            e->q_tail = NULL;
        r->next = NULL;
        e->n_queued--;
        e->running[e->n_running++] = r;
    }
    e->st.queued = e->n_queued;
    e->st.active = e->n_running;
    pthread_mutex_unlock(&e->lock);
}

/* ---- a pass ---- */

static bool is_eog(const si_engine *e, int32_t id)
{
    for (uint32_t i = 0; i < e->n_eog; i++)
        if (e->eog[i] == id)
            return true;
    return false;
}

/* Add one token of r to the step. */
static void push(si_engine *e, uint32_t *n, req *r, int32_t id, uint32_t pos, bool logits)
{
    e->b_id[*n] = id;
    e->b_pos[*n] = pos;
    e->b_seq[*n] = SI_SEQ(r->seq);
    e->b_logits[*n] = logits;
    e->b_req[*n] = r;
    e->b_node[*n] = -1;
    (*n)++;
}

/* Free cells for n more tokens, dropping cached sequences as needed. */
static bool make_room(si_engine *e, uint32_t n)
{
    si_kv *kv = si_llama_kv(e->m);
    while (si_kv_n_free(kv) < n)
        if (!evict_one(e, -1))
            return false;
    return true;
}

/* ---- drafts ---- */

/* Guessed tokens per drafting request this pass: the request's own limit, and for
 * SI_DRAFT_AUTO the width that keeps compute under the reads. */
static uint32_t draft_budget(const si_engine *e, const req *r)
{
    uint32_t max = r->p.draft_max ? r->p.draft_max : e->draft_max;
    if (r->p.draft == SI_DRAFT_AUTO)
        max = min_u32(max, e->draft_width);
    if (r->p.n_predict != SI_N_PREDICT_ALL) /* never guess past -n */
        max = min_u32(max, r->p.n_predict > r->n_made + 1 ? r->p.n_predict - r->n_made - 1 : 0);
    return min_u32(max, SI_DRAFT_MAX_NODES);
}

static int free_slot(si_engine *e)
{
    for (int i = 0; i < SI_MAX_SEQ; i++)
        if (e->slot[i].state == SLOT_FREE)
            return i;
    return -1;
}

/* The tokens of r's sequence so far, the pending one last, in e->hist. */
static uint32_t history(si_engine *e, const req *r)
{
    const slot *s = &e->slot[r->seq];
    uint32_t n = s->n_toks + 1;
    if (n > e->hist_cap) {
        int32_t *h = realloc(e->hist, (size_t)n * 2 * sizeof *h);
        if (!h)
            return 0;
        e->hist = h;
        e->hist_cap = n * 2;
    }
    memcpy(e->hist, s->toks, s->n_toks * sizeof *e->hist);
    e->hist[s->n_toks] = r->pending;
    return n;
}

/* The least of a budget of b guesses the lookahead window gets (it also gets what the
 * tree leaves unused): half for SI_DRAFT_LOOKAHEAD; for SI_DRAFT_AUTO, where lookup
 * goes first, a quarter. */
static uint32_t window_share(si_draft_mode m, uint32_t b)
{
    if (m == SI_DRAFT_LOOKAHEAD)
        return b >= 2 ? min_u32(b / 2, SI_LOOKAHEAD_WINDOW_MAX) : 0;
    if (m == SI_DRAFT_AUTO)
        return b >= 4 ? min_u32(b / 4, SI_LOOKAHEAD_WINDOW_MAX) : 0;
    return 0;
}

/* A slot as a branch sequence of r for this pass, sharing r's cells. */
static int take_branch(si_engine *e, req *r)
{
    int t = free_slot(e);
    e->slot[t].state = SLOT_DRAFT;
    e->slot[t].r = r;
    si_kv_seq_cp(si_llama_kv(e->m), (uint32_t)r->seq, (uint32_t)t, 0, SI_POS_END);
    return t;
}

/* Guesses last in the step: each drafting request's tree below its pending token,
 * then its lookahead window. Each leaf of the tree gets a branch sequence that shares
 * the request's cells, so a guessed token sees its sequence, the pending token and its
 * own ancestors, nothing else; the window is one more branch, a chain after the
 * pending token. */
static void gather_drafts(si_engine *e, uint32_t *n)
{
    si_kv *kv = si_llama_kv(e->m);
    uint32_t rows_left = si_llama_max_logits_rows(e->m);
    for (uint32_t j = 0; j < *n; j++)
        rows_left -= e->b_logits[j];
    for (uint32_t i = 0; i < e->n_running; i++) {
        req *r = e->running[i];
        if (r->pending < 0 || r->p.draft == SI_DRAFT_NONE || r->p.force || r->p.all_logits)
            continue;
        uint32_t room = min_u32(e->n_batch - *n, rows_left);
        uint32_t cells = si_kv_n_free(kv) > *n ? si_kv_n_free(kv) - *n : 0;
        uint32_t budget = min_u32(draft_budget(e, r), min_u32(room, cells));
        uint32_t slots = 0;
        for (int k = 0; k < SI_MAX_SEQ; k++)
            slots += e->slot[k].state == SLOT_FREE;
        uint32_t len = budget && slots ? history(e, r) : 0;
        if (!len)
            continue;
        uint32_t win = window_share(r->p.draft, budget);
        if (win && !r->la && !(r->la = calloc(1, sizeof *r->la)))
            win = 0;
        uint32_t nodes = budget - win, branches = min_u32(e->draft_branches, slots - (win > 0));
        si_draft *d = &r->dr;
        d->n = 0;
        if (r->p.draft != SI_DRAFT_LOOKAHEAD && nodes && branches)
            si_draft_lookup(e->hist, len, nodes, branches, nodes, d);
        bool has_child[SI_DRAFT_MAX_NODES] = {false};
        uint32_t leaves = 0;
        for (uint32_t k = 0; k < d->n; k++)
            if (d->parent[k] >= 0)
                has_child[d->parent[k]] = true;
        for (uint32_t k = 0; k < d->n; k++)
            leaves += !has_child[k];
        if (win && nodes > d->n && branches > leaves)
            si_lookahead_draft(r->la, r->pending, nodes - d->n, branches - leaves, nodes, d);
        if (win) /* the window also gets what the tree leaves */
            win = min_u32(budget - d->n, SI_LOOKAHEAD_WINDOW_MAX);
        memset(has_child, 0, sizeof has_child);
        for (uint32_t k = 0; k < d->n; k++) {
            if (d->parent[k] >= 0)
                has_child[d->parent[k]] = true;
            r->dr_bits[k] = 0;
        }
        si_seq_set all = 0;
        for (uint32_t k = 0; k < d->n; k++) {
            if (has_child[k])
                continue;
            int t = take_branch(e, r); /* a leaf: its branch sequence */
            all |= SI_SEQ(t);
            for (int a = (int)k; a >= 0; a = d->parent[a]) {
                r->dr_bits[a] |= SI_SEQ(t);
                r->dr_leaf_seq[a] = t;
            }
        }
        uint32_t pos = e->b_pos[r->dr_root];
        for (uint32_t k = 0; k < d->n; k++) {
            r->dr_tok[k] = *n;
            e->b_id[*n] = d->id[k];
            e->b_pos[*n] = pos + d->depth[k];
            e->b_seq[*n] = r->dr_bits[k];
            e->b_logits[*n] = true;
            e->b_req[*n] = r;
            e->b_node[*n] = (int16_t)k;
            (*n)++;
        }
        rows_left -= d->n;
        if (win) { /* the window: a chain of guesses in a branch of its own */
            int32_t w[SI_LOOKAHEAD_WINDOW_MAX];
            win = si_lookahead_window(r->la, e->hist, len, win, w);
            int t = take_branch(e, r);
            all |= SI_SEQ(t);
            r->la_tok0 = *n;
            r->la_n = win;
            for (uint32_t k = 0; k < win; k++) {
                e->b_id[*n] = w[k];
                e->b_pos[*n] = pos + 1 + k;
                e->b_seq[*n] = SI_SEQ(t);
                e->b_logits[*n] = true;
                e->b_req[*n] = r;
                e->b_node[*n] = NODE_WINDOW;
                (*n)++;
            }
            rows_left -= win;
        }
        e->b_seq[r->dr_root] |= all;
    }
}

/* After the pass: the branch sequences are dropped, and with them every rejected
 * guess's cell (accepted ones were given to their request's sequence). */
static void drop_branches(si_engine *e)
{
    for (int t = 0; t < SI_MAX_SEQ; t++)
        if (e->slot[t].state == SLOT_DRAFT) {
            si_kv_seq_rm(si_llama_kv(e->m), (uint32_t)t, 0, SI_POS_END);
            e->slot[t].state = SLOT_FREE;
            e->slot[t].r = NULL;
        }
}

/* Gather the step: next tokens first, then prompt chunks. When the pool cannot hold
 * every next token, the request holding the most cells ends with SI_FINISH_LENGTH:
 * it is the one that ran out of room, and ending it frees the most. */
static uint32_t gather(si_engine *e, done_list *dl)
{
    si_kv *kv = si_llama_kv(e->m);
    for (;;) {
        uint32_t need = 0;
        for (uint32_t i = 0; i < e->n_running; i++)
            need += e->running[i]->pending >= 0;
        if (!need || make_room(e, need))
            break;
        req *big = NULL;
        uint32_t most = 0;
        for (uint32_t i = 0; i < e->n_running; i++) {
            uint32_t cells = si_kv_n_used_by(kv, SI_SEQ(e->running[i]->seq));
            if (!big || cells > most)
                big = e->running[i], most = cells;
        }
        retire(e, big, SI_FINISH_LENGTH, big->pending, dl);
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < e->n_running; i++) {
        req *r = e->running[i];
        r->dr.n = 0;
        r->la_n = 0;
        if (r->pending >= 0) {
            r->dr_root = n;
            push(e, &n, r, r->pending, e->slot[r->seq].n_toks, true);
        }
    }
    for (uint32_t i = 0; i < e->n_running && n < e->n_batch; i++) {
        req *r = e->running[i];
        if (r->pending >= 0 || r->n_fed == r->p.n_prompt)
            continue;
        uint32_t k = min_u32(r->p.n_prompt - r->n_fed, e->n_batch - n);
        while (k && !make_room(e, n + k))
            k--;
        uint32_t rows_left = si_llama_max_logits_rows(e->m);
        for (uint32_t j = 0; j < n; j++)
            rows_left -= e->b_logits[j];
        for (uint32_t j = 0; j < k; j++) {
            uint32_t idx = r->n_fed + j;
            bool last = idx + 1 == r->p.n_prompt;
            bool want = r->p.all_logits || last;
            if (want && !rows_left) { /* no row left for it this pass */
                k = j;
                break;
            }
            rows_left -= want;
            push(e, &n, r, r->p.prompt[idx], e->slot[r->seq].n_toks + j, want);
        }
    }
    gather_drafts(e, &n);
    return n;
}

/* The token r produces from a row of logits; ends r when it is done. */
static void produce(si_engine *e, req *r, const float *row, done_list *dl)
{
    if (r->p.force ? r->n_made == r->p.n_force : !r->p.n_predict) { /* every forced token evaluated, or -n 0 */
        retire(e, r, SI_FINISH_LENGTH, -1, dl);
        return;
    }
    if (!r->p.all_logits && r->p.on_logits)
        r->p.on_logits(r->p.ctx, row, e->n_vocab);
    int32_t id = r->p.force ? r->p.force[r->n_made] : si_sampler_sample(r->samp, row);
    if (emit(e, r, id, dl))
        r->pending = id;
}

/* Hand a produced token to r; false when r has ended (end of generation, its caller
 * stopped it, -n reached). */
static bool emit(si_engine *e, req *r, int32_t id, done_list *dl)
{
    if (!r->n_made)
        r->t_first = si_now_s();
    r->n_made++;
    if (!r->p.force && is_eog(e, id)) {
        retire(e, r, SI_FINISH_STOP, id, dl);
        return false;
    }
    pthread_mutex_lock(&e->lock);
    e->st.tokens_generated++;
    pthread_mutex_unlock(&e->lock);
    if (r->p.on_token && !r->p.on_token(r->p.ctx, id)) {
        retire(e, r, SI_FINISH_STOP, id, dl);
        return false;
    }
    bool full = !r->p.force && r->n_made == r->p.n_predict;
    if (full) { /* the last token is not evaluated: the caller may feed it later */
        retire(e, r, SI_FINISH_LENGTH, id, dl);
        return false;
    }
    return true;
}

/* r's pending token and its guesses were evaluated: walk down the tree while the
 * model's choice (sampled over the guesses at each step, si_sampler_sample_draft) is
 * a guess there; the guesses taken join r's sequence, then every token chosen is
 * handed out, the last one to be evaluated next pass. */
static void verify(si_engine *e, req *r, uint32_t root_row, done_list *dl)
{
    si_kv *kv = si_llama_kv(e->m);
    const si_draft *d = &r->dr;
    int32_t chosen[SI_DRAFT_MAX_NODES + 1];
    uint32_t n_chosen = 0, depth = 0, row = root_row;
    int node = -1;
    for (;;) {
        int32_t cands[SI_DRAFT_MAX_NODES];
        int kids[SI_DRAFT_MAX_NODES];
        uint32_t nc = 0;
        for (uint32_t k = 0; k < d->n; k++)
            if (d->parent[k] == node)
                kids[nc] = (int)k, cands[nc++] = d->id[k];
        const float *lrow = e->logits + (size_t)row * e->n_vocab;
        if (r->p.on_logits)
            r->p.on_logits(r->p.ctx, lrow, e->n_vocab);
        int which;
        int32_t id = si_sampler_sample_draft(r->samp, lrow, cands, nc, &which);
        chosen[n_chosen++] = id;
        if (which < 0 || is_eog(e, id))
            break;
        node = kids[which]; /* the guess was right: its row holds the next choice */
        depth++;
        si_sampler_accept(r->samp, id);
        row = e->b_row[r->dr_tok[node]];
    }
    slot *s = &e->slot[r->seq];
    uint32_t pos = s->n_toks; /* the pending token is at pos - 1 */
    if (slot_reserve(s, s->n_toks + depth + 2) != SI_OK) {
        snprintf(r->error, sizeof r->error, "out of memory");
        retire(e, r, SI_FINISH_ERROR, -1, dl);
        return;
    }
    if (depth) {
        si_kv_seq_cp(kv, (uint32_t)r->dr_leaf_seq[node], (uint32_t)r->seq, pos, pos + depth);
        memcpy(s->toks + s->n_toks, chosen, depth * sizeof *chosen);
        s->n_toks += depth;
    }
    pthread_mutex_lock(&e->lock);
    e->st.draft_proposed += d->n;
    e->st.draft_accepted += depth;
    for (uint32_t k = 0; k < d->n; k++)
        e->st.draft_src_proposed[d->src[k]]++;
    for (int a = depth ? node : -1; a >= 0; a = d->parent[a])
        e->st.draft_src_accepted[d->src[a]]++;
    pthread_mutex_unlock(&e->lock);
    for (uint32_t k = 0; k < n_chosen; k++)
        if (!emit(e, r, chosen[k], dl))
            return;
    r->pending = chosen[n_chosen - 1];
}

/* r's lookahead window was evaluated: the model's argmax after each of its tokens
 * feeds the pool and is the next pass's guess one position further on. */
static void advance_window(si_engine *e, req *r)
{
    int32_t out[SI_LOOKAHEAD_WINDOW_MAX];
    for (uint32_t k = 0; k < r->la_n; k++)
        out[k] = si_argmax(e->logits + (size_t)e->b_row[r->la_tok0 + k] * e->n_vocab, e->n_vocab);
    si_lookahead_update(r->la, out, r->la_n);
    pthread_mutex_lock(&e->lock);
    e->st.lookahead_window += r->la_n;
    pthread_mutex_unlock(&e->lock);
}

/* Whether another pass will surely follow this one (lets the scheduler read ahead). */
static bool more_follows(si_engine *e, uint32_t n)
{
    pthread_mutex_lock(&e->lock);
    bool queued = e->q_head != NULL;
    pthread_mutex_unlock(&e->lock);
    if (queued)
        return true;
    for (uint32_t i = 0; i < e->n_running; i++) {
        req *r = e->running[i];
        uint32_t in_step = 0;
        for (uint32_t j = 0; j < n; j++)
            in_step += e->b_req[j] == r;
        if (r->pending < 0 && r->n_fed + in_step < r->p.n_prompt)
            return true; /* more prompt to read */
        uint32_t after = r->n_made + 1; /* tokens made once this step's row is sampled */
        if (r->p.force ? r->n_made < r->p.n_force : after < r->p.n_predict)
            return true;
    }
    return false;
}

/* The pool's counts for si_engine_get_stats, which may run on another thread. */
static void publish_pool(si_engine *e)
{
    si_kv *kv = si_llama_kv(e->m);
    pthread_mutex_lock(&e->lock);
    e->st.n_cells = si_kv_n_cells(kv);
    e->st.free_cells = si_kv_n_free(kv);
    pthread_mutex_unlock(&e->lock);
}

/* The model's figures for si_engine_get_model_stats, which may run on another thread:
 * taken on the engine's thread right after a pass (before its requests hear of it, so
 * a client that got its answer sees the pass counted) and copied out under the lock. */
static void publish_model(si_engine *e)
{
    si_llama_stats ls;
    si_llama_get_stats(e->m, &ls);
    uint32_t n_files = si_llama_n_files(e->m);
    n_files = n_files < SI_SCHED_MAX_FILES ? n_files : SI_SCHED_MAX_FILES;
    si_sched_file_stats files[SI_SCHED_MAX_FILES];
    for (uint32_t i = 0; i < n_files; i++)
        si_llama_file_stats(e->m, i, &files[i]);
    pthread_mutex_lock(&e->lock);
    e->model_st = ls;
    memcpy(e->file_st, files, n_files * sizeof files[0]);
    e->n_files = n_files;
    pthread_mutex_unlock(&e->lock);
}

static int step(si_engine *e, bool *idle, si_error *err);

/* SI_DRAFT_AUTO: as many guesses as keep a pass's compute under its reads. With a
 * given ratio r (compute seconds of one token / read seconds of a pass) a pass may
 * carry 0.8 / r tokens; else the last pass's compute share decides: below half,
 * guess twice as wide; above 80 %, half as wide. */
static void tune_drafts(si_engine *e, uint32_t n)
{
    si_llama_stats st;
    si_llama_get_stats(e->m, &st);
    double dc = st.compute_s - e->last_compute_s, dp = st.pass_s - e->last_pass_s;
    e->last_compute_s = st.compute_s;
    e->last_pass_s = st.pass_s;
    uint32_t drafting = 0, base = 0;
    for (uint32_t i = 0; i < e->n_running; i++)
        if (e->running[i]->pending >= 0 && e->running[i]->p.draft == SI_DRAFT_AUTO)
            drafting++;
    for (uint32_t j = 0; j < n; j++)
        base += e->b_node[j] == -1;
    uint32_t w = e->draft_width;
    if (e->compute_ratio > 0) {
        double tokens = 0.8 / e->compute_ratio;
        w = drafting && tokens > base ? (uint32_t)((tokens - base) / drafting) : 0;
    } else if (dp > 0) {
        double share = dc / dp;
        if (share < 0.5)
            w = w ? 2 * w : 1;
        else if (share > 0.8)
            w /= 2;
    }
    w = min_u32(w, e->draft_max);
    pthread_mutex_lock(&e->lock);
    e->draft_width = w;
    e->st.draft_width = w;
    e->st.draft_passes += n > base;
    pthread_mutex_unlock(&e->lock);
}

int si_engine_step(si_engine *e, bool *idle, si_error *err)
{
    int rc = step(e, idle, err);
    publish_pool(e);
    return rc;
}

static int step(si_engine *e, bool *idle, si_error *err)
{
    done_list dl = {.n = 0};
    *idle = false;
    housekeeping(e, &dl);
    uint32_t n = gather(e, &dl);
    /* A prompt that cannot get one cell while nothing else runs can never go on. */
    while (n == 0 && e->n_running > 0) {
        req *r = e->running[e->n_running - 1];
        snprintf(r->error, sizeof r->error, "the KV cache has no room for the prompt");
        retire(e, r, SI_FINISH_LENGTH, -1, &dl);
        n = gather(e, &dl);
    }
    if (n == 0) {
        deliver_all(e, &dl);
        *idle = true;
        return SI_OK;
    }
    e->pass_no++;
    si_batch bt = {.n = n, .id = e->b_id, .pos = e->b_pos, .seq = e->b_seq, .logits = e->b_logits};
    int rc = si_llama_decode(e->m, &bt, more_follows(e, n), e->logits, err);
    publish_model(e);
    pthread_mutex_lock(&e->lock);
    e->st.passes++;
    e->st.tokens_evaluated += rc == SI_OK ? n : 0;
    pthread_mutex_unlock(&e->lock);
    if (rc < 0) {
        /* Stopped by the model's should_stop (Ctrl-C): the step's requests are
         * cancelled with what they made so far, and the engine goes on. Any other
         * failure ends them with the error. */
        bool stopped = rc == SI_ESTOPPED;
        for (uint32_t j = 0; j < n; j++) {
            req *r = e->b_req[j];
            bool still = false;
            for (uint32_t i = 0; i < e->n_running && !still; i++)
                still = e->running[i] == r;
            if (still) {
                snprintf(r->error, sizeof r->error, "%s", err ? err->msg : "the model step failed");
                retire(e, r, stopped ? SI_FINISH_CANCELLED : SI_FINISH_ERROR, -1, &dl);
            }
        }
        drop_branches(e);
        deliver_all(e, &dl);
        return stopped ? SI_OK : rc;
    }
    /* Record what went in, then hand out the rows in batch order (guessed tokens are
     * the verifier's). */
    for (uint32_t j = 0, row = 0; j < n; j++)
        e->b_row[j] = e->b_logits[j] ? row++ : UINT32_MAX;
    for (uint32_t j = 0; j < n; j++) {
        req *r = e->b_req[j];
        if (e->b_node[j] != -1)
            continue;
        slot *s = &e->slot[r->seq];
        s->toks[s->n_toks++] = e->b_id[j];
        s->used_at = e->pass_no;
        si_sampler_accept(r->samp, e->b_id[j]);
        bool was_prompt = r->pending < 0;
        if (was_prompt)
            r->n_fed++;
        else
            r->pending = -1;
        if (!e->b_logits[j])
            continue;
        const float *lrow = e->logits + (size_t)e->b_row[j] * e->n_vocab;
        if (r->p.all_logits && r->p.on_logits)
            r->p.on_logits(r->p.ctx, lrow, e->n_vocab);
        if (!was_prompt && r->la_n)
            advance_window(e, r);
        if (!was_prompt && r->dr.n)
            verify(e, r, e->b_row[j], &dl);
        else if (!was_prompt || r->n_fed == r->p.n_prompt)
            produce(e, r, lrow, &dl);
        if (r->seq >= 0 && e->slot[r->seq].state == SLOT_RUNNING &&
            slot_reserve(&e->slot[r->seq], e->slot[r->seq].n_toks + 2) != SI_OK) {
            snprintf(r->error, sizeof r->error, "out of memory");
            retire(e, r, SI_FINISH_ERROR, -1, &dl);
        }
    }
    drop_branches(e);
    tune_drafts(e, n);
    deliver_all(e, &dl);
    return SI_OK;
}

int si_engine_drain(si_engine *e, si_error *err)
{
    for (;;) {
        bool idle;
        SI_TRY(si_engine_step(e, &idle, err));
        pthread_mutex_lock(&e->lock);
        bool empty = !e->q_head && !e->n_running;
        pthread_mutex_unlock(&e->lock);
        if (idle && empty)
            return SI_OK;
    }
}

void si_engine_run(si_engine *e)
{
    for (;;) {
        bool idle = false;
        si_error err = {0};
        si_engine_step(e, &idle, &err); /* errors reach the requests they ended */
        pthread_mutex_lock(&e->lock);
        if (e->stop && !e->q_head && !e->n_running) {
            pthread_mutex_unlock(&e->lock);
            return;
        }
        if (idle && !e->stop && !e->q_head) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&e->wake, &e->lock, &ts);
        }
        pthread_mutex_unlock(&e->lock);
    }
}

void si_engine_stop(si_engine *e)
{
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_broadcast(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

void si_engine_get_stats(si_engine *e, si_engine_stats *st)
{
    pthread_mutex_lock(&e->lock);
    *st = e->st; /* the pool's counts as of the end of the last pass */
    st->n_parallel = e->n_parallel;
    pthread_mutex_unlock(&e->lock);
}

void si_engine_get_model_stats(si_engine *e, si_llama_stats *ls, si_sched_file_stats *files, uint32_t max_files,
                               uint32_t *n_files)
{
    pthread_mutex_lock(&e->lock);
    *ls = e->model_st;
    uint32_t n = e->n_files < max_files ? e->n_files : max_files;
    memcpy(files, e->file_st, n * sizeof files[0]);
    *n_files = n;
    pthread_mutex_unlock(&e->lock);
}

si_llama *si_engine_model(si_engine *e) { return e->m; }

void si_engine_free(si_engine *e)
{
    if (!e)
        return;
    done_list dl = {.n = 0};
    while (e->n_running)
        retire(e, e->running[e->n_running - 1], SI_FINISH_CANCELLED, -1, &dl);
    deliver_all(e, &dl);
    while (e->q_head) {
        req *r = e->q_head;
        e->q_head = r->next;
        r->finish = SI_FINISH_CANCELLED;
        dl.items[0] = r;
        dl.last[0] = -1;
        dl.n = 1;
        deliver_all(e, &dl);
    }
    for (int i = 0; i < SI_MAX_SEQ; i++) {
        if (e->slot[i].state != SLOT_FREE)
            slot_drop(e, i);
        free(e->slot[i].toks);
    }
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    free(e->eog);
    free(e->logits);
    free(e->b_id);
    free(e->b_pos);
    free(e->b_seq);
    free(e->b_logits);
    free(e->b_req);
    free(e->b_node);
    free(e->b_row);
    free(e->hist);
    free(e);
}
