/**
 * The names JupyterLab and schema/plugin.json know the plugin's parts by,
 * and its icon.
 */
import { LabIcon } from '@jupyterlab/ui-components';

import gpuSvg from '../../style/icons/gpu.svg';

export const PLUGIN_ID = 'jupyter-gpu-panel:plugin';
/** Shows the panel (schema/plugin.json's View menu entry runs it too). */
export const OPEN_PANEL = 'gpu-panel:open';
/** The panel widget's name for the layout restorer. */
export const PANEL_NAME = 'jupyter-gpu-panel';
/** The status bar item's id. */
export const STATUS_ITEM = 'jupyter-gpu-panel:status';
/** The top-bar item's name in schema/plugin.json's jupyter.lab.toolbars. */
export const TOP_BAR_ITEM = 'gpu-panel-status';

export const gpuIcon = new LabIcon({
  name: 'jupyter-gpu-panel:gpu',
  svgstr: gpuSvg
});
