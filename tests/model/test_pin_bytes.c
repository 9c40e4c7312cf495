/* What pinning saves: after the first pass (which reads everything once: the pins
 * into their buffers) each pass streams the unpinned bytes only, the drop being the
 * pinned tensors' bytes; the plan's figures are the scheduler's; and the reads add
 * up: passes x streamed + the pins once + embedding rows. */
#include "pin_test.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKMODEL\n", argv[0]);
        return 2;
    }
    char path[4200];
    test_mkmodel(argv[1], "pin-bytes",
                 "--seed 5 --dim 128 --layers 4 --heads 4 --kv-heads 2 --ff 384 --vocab-size 300 --type Q4_0", path,
                 sizeof path);
    pin_run none = pin_run_model(path, SI_PIN_NONE, 0, 0);
    const si_sched_stats *n = &none.st.sched;
    CHECK(n->bytes_per_pass == none.plan.pass_bytes_unpinned && n->bytes_per_pass == none.plan.pass_bytes);
    CHECK(n->bytes_per_pass_unpinned == n->bytes_per_pass && none.plan.pin_bytes == 0);
    uint64_t want = n->passes * n->bytes_per_pass + none.st.embd_bytes_read + none.st.open_bytes_read;
    CHECKF(none.st.io_bytes_read == want, "unpinned: read %llu, expected %llu", (unsigned long long)none.st.io_bytes_read,
           (unsigned long long)want);

    pin_run half = pin_run_model(path, SI_PIN_SIZE, n->bytes_per_pass / 2, 0);
    const si_sched_stats *h = &half.st.sched;
    uint64_t pinned_read = h->bytes_per_pass_unpinned - h->bytes_per_pass;
    printf("unpinned %llu per pass; pinned %llu held (%u tensors: %s), %llu per pass streamed, %llu in the first\n",
           (unsigned long long)n->bytes_per_pass, (unsigned long long)h->pinned_bytes, half.plan.pinned_tensors,
           half.plan.pins, (unsigned long long)h->bytes_per_pass, (unsigned long long)h->bytes_per_pass_unpinned);
    CHECK(h->pinned_bytes > 0 && h->pinned_bytes == half.plan.pin_bytes && h->pinned_bytes <= half.plan.pin_budget);
    CHECK(half.plan.pass_bytes == h->bytes_per_pass && half.plan.pass_bytes_unpinned == n->bytes_per_pass);
    /* Whole pinned tensors, not at the end of the file: what they hold is what they no
     * longer read. */
    CHECKF(pinned_read == h->pinned_bytes, "the first pass reads %llu bytes of pins, they hold %llu",
           (unsigned long long)pinned_read, (unsigned long long)h->pinned_bytes);
    /* Splitting a layer around pinned tensors may read a few boundary blocks twice. */
    CHECKF(h->bytes_per_pass + h->pinned_bytes <= n->bytes_per_pass + 2 * 4096 * (uint64_t)h->pinned_extents,
           "streamed %llu + pinned %llu exceeds unpinned %llu by more than the split blocks",
           (unsigned long long)h->bytes_per_pass, (unsigned long long)h->pinned_bytes,
           (unsigned long long)n->bytes_per_pass);
    CHECK(h->bytes_per_pass < n->bytes_per_pass);
    want = h->passes * h->bytes_per_pass + pinned_read + half.st.embd_bytes_read + half.st.open_bytes_read;
    CHECKF(half.st.io_bytes_read == want, "pinned: read %llu, expected %llu x %llu + %llu + %llu",
           (unsigned long long)half.st.io_bytes_read, (unsigned long long)h->passes,
           (unsigned long long)h->bytes_per_pass, (unsigned long long)pinned_read,
           (unsigned long long)half.st.embd_bytes_read);
    free(none.logits), free(half.logits);
    printf("ok\n");
    return 0;
}
