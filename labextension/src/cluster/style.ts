/**
 * The Cluster section's CSS, as a string: ClusterTable renders it in a
 * `<style>` element of its own, so the section needs no stylesheet wiring.
 * Theme colours only (`--jp-*`), so light, dark and high-contrast themes
 * apply. Busy is not an alarm: utilization is plain text; only a leak alarm
 * (warning colour) and an idle holder (info colour) are marked.
 */
export const CLUSTER_CSS = `
.jp-GpuPanel-cluster {
  container-type: inline-size;
  display: flex;
  flex-direction: column;
  gap: 6px;
  min-width: 0;
  font-size: var(--jp-ui-font-size1);
  color: var(--jp-ui-font-color1);
}
.jp-GpuPanel-cluster-muted {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
}
.jp-GpuPanel-cluster-notice {
  border-left: 4px solid var(--jp-info-color1);
  background: var(--jp-layout-color2);
  padding: 4px 8px;
  font-size: var(--jp-ui-font-size1);
}
.jp-GpuPanel-cluster-notice[data-level='warning'] {
  border-left-color: var(--jp-warn-color1);
}
.jp-GpuPanel-cluster-notice[data-level='error'] {
  border-left-color: var(--jp-error-color1);
}
.jp-GpuPanel-cluster-noticeTitle {
  font-weight: 600;
}
.jp-GpuPanel-cluster-noticeDetail {
  color: var(--jp-ui-font-color2);
  overflow-wrap: anywhere;
}
.jp-GpuPanel-cluster-noticeDetail code {
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size);
}
.jp-GpuPanel-cluster-error {
  color: var(--jp-error-color1);
  font-size: var(--jp-ui-font-size0);
  overflow-wrap: anywhere;
}
.jp-GpuPanel-cluster-summary {
  font-size: var(--jp-ui-font-size1);
  font-variant-numeric: tabular-nums;
}
.jp-GpuPanel-cluster-tools {
  display: flex;
  flex-wrap: wrap;
  align-items: center;
  gap: 4px 8px;
}
.jp-GpuPanel-cluster-filters {
  display: inline-flex;
  border: var(--jp-border-width) solid var(--jp-border-color1);
  border-radius: var(--jp-border-radius);
  overflow: hidden;
}
.jp-GpuPanel-cluster-filter {
  border: none;
  border-right: var(--jp-border-width) solid var(--jp-border-color1);
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size0);
  padding: 2px 6px;
  cursor: pointer;
  white-space: nowrap;
}
.jp-GpuPanel-cluster-filter:last-child {
  border-right: none;
}
.jp-GpuPanel-cluster-filter:hover {
  background: var(--jp-layout-color2);
}
.jp-GpuPanel-cluster-filter[aria-pressed='true'] {
  background: var(--jp-brand-color1);
  color: var(--jp-ui-inverse-font-color1);
}
.jp-GpuPanel-cluster-filter:focus-visible,
.jp-GpuPanel-cluster-sort:focus-visible,
.jp-GpuPanel-cluster-search:focus-visible {
  outline: var(--jp-border-width) solid var(--jp-brand-color1);
  outline-offset: -1px;
}
.jp-GpuPanel-cluster-count {
  opacity: 0.8;
  margin-left: 3px;
  font-variant-numeric: tabular-nums;
}
.jp-GpuPanel-cluster-search {
  flex: 1 1 120px;
  min-width: 0;
  box-sizing: border-box;
  height: 22px;
  padding: 0 6px;
  border: var(--jp-border-width) solid var(--jp-border-color1);
  border-radius: var(--jp-border-radius);
  background: var(--jp-input-background, var(--jp-layout-color1));
  color: var(--jp-ui-font-color1);
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size0);
}
.jp-GpuPanel-cluster-scroll {
  max-height: min(60vh, 640px);
  overflow: auto;
  border: var(--jp-border-width) solid var(--jp-border-color2);
}
.jp-GpuPanel-cluster-table {
  width: 100%;
  table-layout: fixed;
  border-collapse: separate;
  border-spacing: 0;
  font-size: var(--jp-ui-font-size0);
  font-variant-numeric: tabular-nums;
}
.jp-GpuPanel-cluster-table th,
.jp-GpuPanel-cluster-table td {
  padding: 0 4px;
  line-height: 19px;
  white-space: nowrap;
  overflow: hidden;
  text-overflow: ellipsis;
  text-align: left;
  font-weight: normal;
  border-bottom: var(--jp-border-width) solid var(--jp-border-color3);
}
/* one line, a fixed height: the windowed table's spacer rows count on it */
.jp-GpuPanel-cluster-table tbody tr[data-cluster-row] {
  height: 20px;
}
.jp-GpuPanel-cluster-table thead th {
  position: sticky;
  top: 0;
  z-index: 1;
  padding: 0;
  background: var(--jp-layout-color1);
  border-bottom: var(--jp-border-width) solid var(--jp-border-color1);
}
.jp-GpuPanel-cluster-sort {
  display: block;
  width: 100%;
  padding: 3px 4px;
  border: none;
  background: none;
  color: var(--jp-ui-font-color2);
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size0);
  font-weight: 600;
  text-align: inherit;
  white-space: nowrap;
  overflow: hidden;
  text-overflow: ellipsis;
  cursor: pointer;
}
.jp-GpuPanel-cluster-table th[aria-sort='ascending'] .jp-GpuPanel-cluster-sort,
.jp-GpuPanel-cluster-table th[aria-sort='descending'] .jp-GpuPanel-cluster-sort {
  color: var(--jp-ui-font-color0);
}
.jp-GpuPanel-cluster-table tbody tr:hover {
  background: var(--jp-layout-color2);
}
.jp-GpuPanel-cluster-table tbody tr[data-mine='true'] {
  background: var(--jp-layout-color2);
}
.jp-GpuPanel-cluster-table tbody tr[data-mine='true'] .jp-GpuPanel-cluster-c-holders {
  font-weight: 600;
}
.jp-GpuPanel-cluster-table tbody tr[data-stale='true'] {
  color: var(--jp-ui-font-color3);
  font-style: italic;
}
.jp-GpuPanel-cluster-table tbody tr[data-leak]:not([data-leak='0']) > th {
  box-shadow: inset 3px 0 0 var(--jp-warn-color1);
}
.jp-GpuPanel-cluster-gpu {
  color: var(--jp-ui-font-color2);
}
.jp-GpuPanel-cluster-table td.jp-GpuPanel-cluster-c-memory {
  position: relative;
}
.jp-GpuPanel-cluster-memBar {
  position: absolute;
  left: 4px;
  right: 4px;
  bottom: 1px;
  height: 2px;
  background: var(--jp-layout-color3);
  border-radius: 1px;
  overflow: hidden;
}
.jp-GpuPanel-cluster-memFill {
  height: 100%;
  background: var(--jp-brand-color1);
}
.jp-GpuPanel-cluster-memFill[data-warn='true'] {
  background: var(--jp-warn-color1);
}
.jp-GpuPanel-cluster-badge {
  display: inline-block;
  padding: 0 4px;
  margin-right: 3px;
  border-radius: var(--jp-border-radius);
  line-height: 14px;
  font-size: var(--jp-ui-font-size0);
  font-style: normal;
  font-weight: 600;
}
.jp-GpuPanel-cluster-badge[data-kind='leak'] {
  background: var(--jp-warn-color1);
  color: var(--jp-ui-inverse-font-color1);
}
.jp-GpuPanel-cluster-badge[data-kind='idle'] {
  color: var(--jp-info-color0);
  border: var(--jp-border-width) dashed var(--jp-info-color1);
  font-weight: normal;
}
.jp-GpuPanel-cluster-badge[data-kind='stale'] {
  color: var(--jp-ui-font-color2);
  border: var(--jp-border-width) solid var(--jp-border-color1);
  font-weight: normal;
}
.jp-GpuPanel-cluster-empty {
  padding: 8px;
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size1);
}
/* columns: widths of the fixed layout (each set sums to 100%); numbers right-aligned */
.jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-node {
  width: 25%;
}
.jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-util {
  width: 10%;
}
.jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-memory {
  width: 16%;
}
.jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-power {
  width: 11%;
}
.jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-temp {
  width: 10%;
}
.jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-holders {
  width: 20%;
}
.jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-leak {
  width: 8%;
}
.jp-GpuPanel-cluster-table .jp-GpuPanel-cluster-c-util,
.jp-GpuPanel-cluster-table .jp-GpuPanel-cluster-c-power,
.jp-GpuPanel-cluster-table .jp-GpuPanel-cluster-c-temp,
.jp-GpuPanel-cluster-table .jp-GpuPanel-cluster-c-leak {
  text-align: right;
}
/* a narrow sidebar drops power, then temperature (the node cell's tooltip still has every reading) */
@container (max-width: 400px) {
  .jp-GpuPanel-cluster-table .jp-GpuPanel-cluster-c-power {
    display: none;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-node {
    width: 28%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-util {
    width: 11%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-memory {
    width: 18%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-temp {
    width: 11%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-holders {
    width: 24%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-leak {
    width: 8%;
  }
}
@container (max-width: 320px) {
  .jp-GpuPanel-cluster-table .jp-GpuPanel-cluster-c-temp {
    display: none;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-node {
    width: 31%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-util {
    width: 14%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-memory {
    width: 19%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-holders {
    width: 28%;
  }
  .jp-GpuPanel-cluster-table col.jp-GpuPanel-cluster-c-leak {
    width: 8%;
  }
}
`;
