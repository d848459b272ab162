"""Which Elasticsearch action each sandbox route is, and where its target indices come from: one table.

Action names are the NAME / TYPE constants of ES 9.x's transport actions, named beside each entry; the REST
handler (Rest*Action) of each path calls that action. `targets` says what authorisation looks at:

- "cluster": a cluster action, checked against the cluster privileges;
- "path": an index action on the `<index>` path parameter (no parameter: all indices);
- "bulk", "msearch", "mget", "reindex", "aliases": composite requests whose targets are in the body
  (checked by sandbox/security/authz.py, per item where ES does so);
- "self": allowed to any authenticated caller (ES: `_authenticate`, RBACEngine#checkSameUserPermissions).

`implied` is the second check ES makes on single-document writes: TransportIndexAction / TransportDeleteAction run
as a one-item bulk, and AuthorizationService#authorizeBulkItems checks the item's implied action
(`indices:data/write/index:op_type/index|create`, `indices:data/write/delete`, `indices:data/write/update`).
"""

from __future__ import annotations

from dataclasses import dataclass

_T = "/_ml/trained_models"


@dataclass(frozen=True)
class Action:
    name: str
    targets: str = "cluster"
    implied: str | None = None


def _c(name: str) -> Action:
    return Action(name)


def _i(name: str, implied: str | None = None) -> Action:
    return Action(name, "path", implied)


INDEX_OP = "indices:data/write/index:op_type/index"  # AuthorizationService.IMPLIED_INDEX_ACTION
CREATE_OP = "indices:data/write/index:op_type/create"  # AuthorizationService.IMPLIED_CREATE_ACTION
DELETE = "indices:data/write/delete"  # TransportDeleteAction.NAME
UPDATE = "indices:data/write/update"  # TransportUpdateAction.NAME
SEARCH = "indices:data/read/search"  # TransportSearchAction.TYPE
AUTO_CREATE = "indices:admin/auto_create"  # AutoCreateAction.NAME

# (method, route rule) -> action. HEAD uses the GET entry unless it has its own (werkzeug adds HEAD to GET rules).
ROUTE_ACTIONS: dict[tuple[str, str], Action] = {
    # cluster_api
    ("GET", "/"): _c("cluster:monitor/main"),  # TransportMainAction (RestMainAction)
    ("HEAD", "/"): _c("cluster:monitor/main"),
    ("GET", "/_license"): _c("cluster:monitor/xpack/license/get"),  # GetLicenseAction
    ("GET", "/_cluster/state"): _c("cluster:monitor/state"),  # ClusterStateAction
    ("GET", "/_cluster/health"): _c("cluster:monitor/health"),  # TransportClusterHealthAction
    ("GET", "/_cluster/health/<index>"): _c("cluster:monitor/health"),
    ("GET", "/_capabilities"): _c("cluster:monitor/nodes/capabilities"),  # TransportNodesCapabilitiesAction
    ("GET", "/_cluster/settings"): _c("cluster:monitor/settings"),  # ClusterGetSettingsAction
    ("PUT", "/_cluster/settings"): _c("cluster:admin/settings/update"),  # ClusterUpdateSettingsAction
    # search
    ("GET", "/_search"): _i(SEARCH),
    ("POST", "/_search"): _i(SEARCH),
    ("GET", "/<index>/_search"): _i(SEARCH),
    ("POST", "/<index>/_search"): _i(SEARCH),
    ("GET", "/_count"): _i(SEARCH),  # RestCountAction runs a size-0 search
    ("POST", "/_count"): _i(SEARCH),
    ("GET", "/<index>/_count"): _i(SEARCH),
    ("POST", "/<index>/_count"): _i(SEARCH),
    ("GET", "/_msearch"): Action("indices:data/read/msearch", "msearch"),  # TransportMultiSearchAction
    ("POST", "/_msearch"): Action("indices:data/read/msearch", "msearch"),
    ("GET", "/<index>/_msearch"): Action("indices:data/read/msearch", "msearch"),
    ("POST", "/<index>/_msearch"): Action("indices:data/read/msearch", "msearch"),
    # RankEvalPlugin.ACTION; TransportRankEvalAction then runs each search as the caller (one msearch)
    ("GET", "/_rank_eval"): _i("indices:data/read/rank_eval"),
    ("POST", "/_rank_eval"): _i("indices:data/read/rank_eval"),
    ("GET", "/<index>/_rank_eval"): _i("indices:data/read/rank_eval"),
    ("POST", "/<index>/_rank_eval"): _i("indices:data/read/rank_eval"),
    # inference (x-pack inference: GetInferenceModelAction, PutInferenceModelAction, UpdateInferenceModelAction,
    # DeleteInferenceEndpointAction, InferenceAction)
    ("GET", "/_inference"): _c("cluster:monitor/xpack/inference/get"),
    ("GET", "/_inference/_all"): _c("cluster:monitor/xpack/inference/get"),
    ("GET", "/_inference/<task_type>"): _c("cluster:monitor/xpack/inference/get"),
    ("GET", "/_inference/<task_type>/_all"): _c("cluster:monitor/xpack/inference/get"),
    ("GET", "/_inference/<task_type>/<inference_id>"): _c("cluster:monitor/xpack/inference/get"),
    ("PUT", "/_inference/<inference_id>"): _c("cluster:admin/xpack/inference/put"),
    ("PUT", "/_inference/<task_type>/<inference_id>"): _c("cluster:admin/xpack/inference/put"),
    ("PUT", "/_inference/<inference_id>/_update"): _c("cluster:admin/xpack/inference/update"),
    ("POST", "/_inference/<inference_id>/_update"): _c("cluster:admin/xpack/inference/update"),
    ("PUT", "/_inference/<task_type>/<inference_id>/_update"): _c("cluster:admin/xpack/inference/update"),
    ("POST", "/_inference/<task_type>/<inference_id>/_update"): _c("cluster:admin/xpack/inference/update"),
    ("DELETE", "/_inference/<inference_id>"): _c("cluster:admin/xpack/inference/delete"),
    ("DELETE", "/_inference/<task_type>/<inference_id>"): _c("cluster:admin/xpack/inference/delete"),
    ("POST", "/_inference/<inference_id>"): _c("cluster:monitor/xpack/inference"),
    ("POST", "/_inference/<task_type>/<inference_id>"): _c("cluster:monitor/xpack/inference"),
    # ml (x-pack ml core actions: GetTrainedModelsAction, GetTrainedModelsStatsAction, PutTrainedModelAction,
    # DeleteTrainedModelAction, PutTrainedModelDefinitionPartAction, PutTrainedModelVocabularyAction,
    # PutTrainedModelAliasAction, DeleteTrainedModelAliasAction, Start/Stop/UpdateTrainedModelDeploymentAction,
    # ClearDeploymentCacheAction, InferModelAction.EXTERNAL_NAME, InferTrainedModelDeploymentAction, MlInfoAction)
    ("GET", f"{_T}/_stats"): _c("cluster:monitor/xpack/ml/inference/stats/get"),
    ("GET", f"{_T}/<model_id>/_stats"): _c("cluster:monitor/xpack/ml/inference/stats/get"),
    ("GET", _T): _c("cluster:monitor/xpack/ml/inference/get"),
    ("GET", f"{_T}/<model_id>"): _c("cluster:monitor/xpack/ml/inference/get"),
    ("PUT", f"{_T}/<model_id>"): _c("cluster:admin/xpack/ml/inference/put"),
    ("DELETE", f"{_T}/<model_id>"): _c("cluster:admin/xpack/ml/inference/delete"),
    ("PUT", f"{_T}/<model_id>/definition/<int:part>"): _c("cluster:admin/xpack/ml/trained_models/part/put"),
    ("PUT", f"{_T}/<model_id>/vocabulary"): _c("cluster:admin/xpack/ml/trained_models/vocabulary/put"),
    ("PUT", f"{_T}/<model_id>/model_aliases/<model_alias>"): _c("cluster:admin/xpack/ml/inference/model_aliases/put"),
    ("POST", f"{_T}/<model_id>/model_aliases/<model_alias>"):
        _c("cluster:admin/xpack/ml/inference/model_aliases/put"),
    ("DELETE", f"{_T}/<model_id>/model_aliases/<model_alias>"):
        _c("cluster:admin/xpack/ml/inference/model_aliases/delete"),
    ("POST", f"{_T}/<model_id>/deployment/_start"): _c("cluster:admin/xpack/ml/trained_models/deployment/start"),
    ("POST", f"{_T}/<model_id>/deployment/_stop"): _c("cluster:admin/xpack/ml/trained_models/deployment/stop"),
    ("POST", f"{_T}/<model_id>/deployment/_update"): _c("cluster:admin/xpack/ml/trained_models/deployment/update"),
    ("POST", f"{_T}/<model_id>/deployment/cache/_clear"): _c("cluster:admin/xpack/ml/trained_models/cache/clear"),
    ("POST", f"{_T}/<model_id>/_infer"): _c("cluster:monitor/xpack/ml/inference/infer"),
    ("POST", f"{_T}/<model_id>/deployment/_infer"): _c("cluster:monitor/xpack/ml/inference/infer"),
    ("GET", "/_ml/info"): _c("cluster:monitor/xpack/ml/info/get"),
    # indices (TransportGetMappingsAction, TransportPutMappingAction, GetSettingsAction, TransportUpdateSettingsAction,
    # TransportCloseIndexAction, OpenIndexAction, TransportCreateIndexAction, GetIndexAction,
    # TransportDeleteIndexAction)
    ("GET", "/_mapping"): _i("indices:admin/mappings/get"),
    ("GET", "/<index>/_mapping"): _i("indices:admin/mappings/get"),
    ("PUT", "/<index>/_mapping"): _i("indices:admin/mapping/put"),
    ("POST", "/<index>/_mapping"): _i("indices:admin/mapping/put"),
    ("GET", "/_settings"): _i("indices:monitor/settings/get"),
    ("GET", "/_settings/<name>"): _i("indices:monitor/settings/get"),
    ("GET", "/<index>/_settings"): _i("indices:monitor/settings/get"),
    ("GET", "/<index>/_settings/<name>"): _i("indices:monitor/settings/get"),
    ("PUT", "/_settings"): _i("indices:admin/settings/update"),
    ("PUT", "/<index>/_settings"): _i("indices:admin/settings/update"),
    ("POST", "/<index>/_close"): _i("indices:admin/close"),
    ("POST", "/<index>/_open"): _i("indices:admin/open"),
    ("PUT", "/<index>"): _i("indices:admin/create"),
    ("GET", "/<index>"): _i("indices:admin/get"),
    ("HEAD", "/<index>"): _i("indices:admin/get"),  # RestGetIndicesAction answers HEAD too
    ("DELETE", "/<index>"): _i("indices:admin/delete"),
    # aliases (TransportIndicesAliasesAction, GetAliasesAction)
    ("POST", "/_aliases"): Action("indices:admin/aliases", "aliases"),
    ("GET", "/_alias"): _i("indices:admin/aliases/get"),
    ("GET", "/_alias/<name>"): _i("indices:admin/aliases/get"),
    ("GET", "/<index>/_alias"): _i("indices:admin/aliases/get"),
    ("GET", "/<index>/_alias/<name>"): _i("indices:admin/aliases/get"),
    ("HEAD", "/_alias/<name>"): _i("indices:admin/aliases/get"),
    ("HEAD", "/<index>/_alias/<name>"): _i("indices:admin/aliases/get"),
    ("PUT", "/<index>/_alias/<name>"): _i("indices:admin/aliases"),
    ("POST", "/<index>/_alias/<name>"): _i("indices:admin/aliases"),
    ("PUT", "/<index>/_aliases/<name>"): _i("indices:admin/aliases"),
    ("POST", "/<index>/_aliases/<name>"): _i("indices:admin/aliases"),
    ("DELETE", "/<index>/_alias/<name>"): _i("indices:admin/aliases"),
    ("DELETE", "/<index>/_aliases/<name>"): _i("indices:admin/aliases"),
    # templates and pipelines (TransportPutComposableIndexTemplateAction, GetComposableIndexTemplateAction,
    # TransportDeleteComposableIndexTemplateAction, PutPipelineTransportAction, GetPipelineAction,
    # DeletePipelineTransportAction)
    ("PUT", "/_index_template/<name>"): _c("indices:admin/index_template/put"),
    ("POST", "/_index_template/<name>"): _c("indices:admin/index_template/put"),
    ("GET", "/_index_template"): _c("indices:admin/index_template/get"),
    ("GET", "/_index_template/<name>"): _c("indices:admin/index_template/get"),
    ("HEAD", "/_index_template/<name>"): _c("indices:admin/index_template/get"),
    ("DELETE", "/_index_template/<name>"): _c("indices:admin/index_template/delete"),
    ("PUT", "/_ingest/pipeline/<id>"): _c("cluster:admin/ingest/pipeline/put"),
    ("GET", "/_ingest/pipeline"): _c("cluster:admin/ingest/pipeline/get"),
    ("GET", "/_ingest/pipeline/<id>"): _c("cluster:admin/ingest/pipeline/get"),
    ("DELETE", "/_ingest/pipeline/<id>"): _c("cluster:admin/ingest/pipeline/delete"),
    # documents (TransportBulkAction, TransportIndexAction, TransportUpdateAction, TransportGetAction,
    # TransportDeleteAction, TransportMultiGetAction, TransportRefreshAction, ReindexAction)
    ("POST", "/_bulk"): Action("indices:data/write/bulk", "bulk"),
    ("PUT", "/_bulk"): Action("indices:data/write/bulk", "bulk"),
    ("POST", "/<index>/_bulk"): Action("indices:data/write/bulk", "bulk"),
    ("PUT", "/<index>/_bulk"): Action("indices:data/write/bulk", "bulk"),
    ("PUT", "/<index>/_doc/<path:doc_id>"): _i("indices:data/write/index", INDEX_OP),
    ("POST", "/<index>/_doc/<path:doc_id>"): _i("indices:data/write/index", INDEX_OP),
    ("POST", "/<index>/_doc"): _i("indices:data/write/index", INDEX_OP),
    ("PUT", "/<index>/_create/<path:doc_id>"): _i("indices:data/write/index", CREATE_OP),
    ("POST", "/<index>/_create/<path:doc_id>"): _i("indices:data/write/index", CREATE_OP),
    ("POST", "/<index>/_update/<path:doc_id>"): _i(UPDATE),
    ("GET", "/<index>/_doc/<path:doc_id>"): _i("indices:data/read/get"),
    ("HEAD", "/<index>/_doc/<path:doc_id>"): _i("indices:data/read/get"),
    ("GET", "/<index>/_source/<path:doc_id>"): _i("indices:data/read/get"),
    ("HEAD", "/<index>/_source/<path:doc_id>"): _i("indices:data/read/get"),
    ("DELETE", "/<index>/_doc/<path:doc_id>"): _i(DELETE, DELETE),
    ("GET", "/_mget"): Action("indices:data/read/mget", "mget"),
    ("POST", "/_mget"): Action("indices:data/read/mget", "mget"),
    ("GET", "/<index>/_mget"): Action("indices:data/read/mget", "mget"),
    ("POST", "/<index>/_mget"): Action("indices:data/read/mget", "mget"),
    ("GET", "/_refresh"): _i("indices:admin/refresh"),
    ("POST", "/_refresh"): _i("indices:admin/refresh"),
    ("GET", "/<index>/_refresh"): _i("indices:admin/refresh"),
    ("POST", "/<index>/_refresh"): _i("indices:admin/refresh"),
    ("POST", "/_reindex"): Action("indices:data/write/reindex", "reindex"),
    # index blocks: TransportAddIndexBlockAction / TransportRemoveIndexBlockAction (9.1+)
    ("PUT", "/<index>/_block/<block>"): _i("indices:admin/block/add"),
    ("DELETE", "/<index>/_block/<block>"): _i("indices:admin/block/remove"),
    # tasks: TransportListTasksAction, TransportGetTaskAction, TransportCancelTasksAction
    ("GET", "/_tasks"): _c("cluster:monitor/tasks/lists"),
    ("GET", "/_tasks/<task_id>"): _c("cluster:monitor/task/get"),
    ("POST", "/_tasks/<task_id>/_cancel"): _c("cluster:admin/tasks/cancel"),
    # read-only preflight: TransportSimulateTemplateAction, TransportValidateQueryAction
    ("POST", "/_index_template/_simulate"): _c("indices:admin/index_template/simulate"),
    ("POST", "/_index_template/_simulate/<name>"): _c("indices:admin/index_template/simulate"),
    ("GET", "/_validate/query"): _i("indices:admin/validate/query"),
    ("POST", "/_validate/query"): _i("indices:admin/validate/query"),
    ("GET", "/<index>/_validate/query"): _i("indices:admin/validate/query"),
    ("POST", "/<index>/_validate/query"): _i("indices:admin/validate/query"),
    # security (x-pack core security actions: AuthenticateAction, CreateApiKeyAction, GetApiKeyAction,
    # InvalidateApiKeyAction)
    ("GET", "/_security/_authenticate"): Action("cluster:admin/xpack/security/user/authenticate", "self"),
    ("POST", "/_security/api_key"): _c("cluster:admin/xpack/security/api_key/create"),
    ("PUT", "/_security/api_key"): _c("cluster:admin/xpack/security/api_key/create"),
    ("GET", "/_security/api_key"): _c("cluster:admin/xpack/security/api_key/get"),
    ("DELETE", "/_security/api_key"): _c("cluster:admin/xpack/security/api_key/invalidate"),
}


def action_for(method: str, rule: str) -> Action | None:
    found = ROUTE_ACTIONS.get((method, rule))
    if found is None and method == "HEAD":
        found = ROUTE_ACTIONS.get(("GET", rule))
    return found
