/* GET /v1/models (the one model this server runs, by its file name) and
 * GET /v1/models/{id}. */
#include <string.h>

#include "serve_internal.h"

static json_t *model_json(si_server *s)
{
    return json_pack("{s:s,s:s,s:I,s:s}", "id", s->o.model_name, "object", "model", "created",
                     (json_int_t)s->created_unix, "owned_by", "streaminfer");
}

enum MHD_Result srv_handle_models(srv_req *r)
{
    si_server *s = r->s;
    const char *prefix = "/v1/models/";
    if (strncmp(r->url, prefix, strlen(prefix)) == 0) {
        const char *id = r->url + strlen(prefix);
        if (strcmp(id, s->o.model_name) != 0)
            return srv_error(r, 404, "model_not_found", "model", "no model '%.200s' here; this server runs '%s'", id,
                             s->o.model_name);
        return srv_respond_json(r, 200, model_json(s));
    }
    json_t *data = json_array();
    if (data)
        json_array_append_new(data, model_json(s));
    return srv_respond_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}
