/* GET /health: 503 {"status": "loading"} until the model is loaded, then 200
 * {"status": "ok"}; 503 {"status": "stopping"} at shutdown. No API key needed. */
#include "serve_internal.h"

enum MHD_Result srv_handle_health(srv_req *r)
{
    int st = srv_state(r->s, NULL);
    const char *status = st == SRV_READY ? "ok" : st == SRV_LOADING ? "loading" : "stopping";
    return srv_respond_json(r, st == SRV_READY ? 200 : 503, json_pack("{s:s}", "status", status));
}
