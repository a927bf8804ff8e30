/** How the cluster form of the schema (cluster-ddl.ts) names a cluster and a table's replicated part. */
import { CLUSTER_NAME } from "../config.js";

export class ClusterRenderError extends Error {
  override readonly name = "ClusterRenderError";
}

/** `ON CLUSTER '<cluster>'`. */
export function onCluster(cluster: string): string {
  if (!CLUSTER_NAME.test(cluster)) throw new ClusterRenderError(`cluster name ${JSON.stringify(cluster)}: expected letters, digits and _`);
  return `ON CLUSTER '${cluster}'`;
}

/** The replicated table behind a Distributed one, e.g. flowmeter.cli_invocations → flowmeter.cli_invocations_local. */
export function localTable(table: string): string {
  return `${table}_local`;
}
