/* Where si_llama_open looks for the members of a striped pack besides the directory of
 * the member it is given (--stripe-path): a process-wide list. */
#include <stdlib.h>
#include <string.h>

#include "streaminfer/llama.h"
#include "stripe.h"

#define MAX_DIRS 64

static char *dirs[MAX_DIRS];
static size_t n_dirs;

int si_llama_stripe_path_add(const char *dir, si_error *err)
{
    SI_CHECK(n_dirs == MAX_DIRS, err, SI_EINVAL, "more than %d stripe directories", MAX_DIRS);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--; /* "dir/" and "dir" are the same place; messages read better without */
    char *d = strndup(dir, len);
    SI_CHECK(!d, err, SI_ENOMEM, "out of memory");
    dirs[n_dirs++] = d;
    return SI_OK;
}

void si_llama_stripe_path_clear(void)
{
    for (size_t i = 0; i < n_dirs; i++)
        free(dirs[i]);
    n_dirs = 0;
}

const char *const *si_stripe_dirs(size_t *n)
{
    *n = n_dirs;
    return (const char *const *)dirs;
}
