/**
 * The translation interface the views and pure modules use: the part of
 * JupyterLab's TranslationBundle (`translator.load(DOMAIN)`) they call. Pure
 * modules take it as a parameter and default to `plainTrans` (English, the
 * same `%1` placeholders as JupyterLab's gettext), so jest needs no
 * JupyterLab import.
 */

/** The gettext domain of this extension's strings. */
export const DOMAIN = 'jupyter_gpu_panel';

export interface ITrans {
  /** A string, with %1, %2 ... replaced by the arguments. */
  __(msgid: string, ...args: any[]): string;
  /**
   * Singular or plural by n. As in JupyterLab's gettext, n itself is %1 and
   * the arguments follow as %2, %3 ...
   */
  _n(msgid: string, msgidPlural: string, n: number, ...args: any[]): string;
}

function substitute(text: string, args: any[]): string {
  return text.replace(/%(\d+)/g, (m, i) => {
    const v = args[Number(i) - 1];
    return v === undefined ? m : String(v);
  });
}

/**
 * English without a translator: what JupyterLab's nullTranslator does,
 * including _n putting n before the arguments (a plainTrans that did not
 * hid "GPU %1" showing the GPU count instead of the GPU in the lab).
 */
export const plainTrans: ITrans = {
  __: (msgid, ...args) => substitute(msgid, args),
  _n: (msgid, msgidPlural, n, ...args) =>
    substitute(n === 1 ? msgid : msgidPlural, [n, ...args])
};
