/** The panel's Cluster section (issue 10): GET api/gpu-panel/cluster as a table per GPU. */
export { ClusterSection, IClusterSectionProps } from './section';
export { ClusterView, IClusterViewProps } from './view';
export { Cluster, ClusterGPU, ClusterHolder } from './model';
export { CLUSTER_CSS } from './style';
