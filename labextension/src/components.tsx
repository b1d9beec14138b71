/**
 * Small presentational pieces the feature views share: a banner, a stat
 * row, a meter bar, text with inline code, and the outcome note a row shows
 * after an action. Data in, nothing fetched.
 */
import { closeIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ITextPart } from './memory/words';
import { IBanner } from './banners';

export function Banner(props: {
  banner: IBanner;
  big?: boolean;
  children?: React.ReactNode;
}): JSX.Element {
  const { banner, big } = props;
  return (
    <div
      className={`jp-GpuPanel-banner jp-GpuPanel-banner-${banner.level}${
        big ? ' jp-GpuPanel-message' : ''
      }`}
      role={banner.level === 'info' ? 'status' : 'alert'}
    >
      <div className="jp-GpuPanel-bannerTitle">{banner.title}</div>
      {banner.detail && (
        <div className="jp-GpuPanel-bannerDetail">{banner.detail}</div>
      )}
      {props.children}
    </div>
  );
}

export function Stat(props: {
  label: string;
  value: string;
  testId?: string;
}): JSX.Element {
  return (
    <>
      <dt className="jp-GpuPanel-label">{props.label}</dt>
      <dd className="jp-GpuPanel-value" data-testid={props.testId}>
        {props.value}
      </dd>
    </>
  );
}

/**
 * A 0..100 bar. Busy is not an alarm: utilization is drawn in the brand
 * colour at any level; only `warnAt` (memory nearly full) changes colour,
 * to the warning colour, never the error one.
 */
export function Meter(props: {
  label: string;
  percent: number | null;
  text: string;
  warnAt?: number;
  thin?: boolean;
}): JSX.Element {
  const { label, percent, text, warnAt, thin } = props;
  const p = percent === null ? 0 : Math.max(0, Math.min(100, percent));
  const warn = warnAt !== undefined && percent !== null && p >= warnAt;
  return (
    <div
      className={`jp-GpuPanel-bar${thin ? ' jp-GpuPanel-bar-thin' : ''}`}
      role="meter"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={percent === null ? undefined : Math.round(p)}
      aria-valuetext={text}
    >
      <div
        className={`jp-GpuPanel-barFill${warn ? ' jp-GpuPanel-barFill-warn' : ''}`}
        style={{ width: `${p}%` }}
      />
    </div>
  );
}

export function TextWithCode(props: { parts: ITextPart[] }): JSX.Element {
  return (
    <>
      {props.parts.map((p, i) =>
        p.code ? (
          <code key={i}>{p.text}</code>
        ) : (
          <React.Fragment key={i}>{p.text}</React.Fragment>
        )
      )}
    </>
  );
}

/** What an action came to, where it was clicked; an error stays until dismissed or acted again. */
export function OutcomeNote(props: {
  level: 'info' | 'error';
  message: string;
  dismissLabel: string;
  onDismiss: () => void;
}): JSX.Element {
  const { level, message } = props;
  return (
    <div
      className={`jp-GpuPanel-note jp-GpuPanel-note-${level}`}
      role={level === 'error' ? 'alert' : 'status'}
      data-outcome={level}
    >
      <span className="jp-GpuPanel-noteText">{message}</span>
      <ToolbarButtonComponent
        className="jp-GpuPanel-noteClose"
        icon={closeIcon}
        tooltip={props.dismissLabel}
        onClick={props.onDismiss}
      />
    </div>
  );
}
