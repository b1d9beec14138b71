/** The panel's Cluster section (issue 10): GET api/gpu-panel/cluster as a table per GPU. */
export { ClusterSection, IClusterFeed, IClusterSectionProps } from './section';
export { ClusterTable, IClusterTableProps } from './table';
export { Cluster, ClusterGPU, ClusterHolder } from './model';
export { CLUSTER_CSS } from './style';
