import {
  niceCeil,
  kernelMemoryText,
  clocksText,
  formatBytes,
  formatDuration,
  formatMemoryPair,
  formatPercent,
  formatPower,
  formatRate,
  formatTemp,
  leakText,
  memoryPercent,
  missingText,
  shortNumber,
  throttleText
} from '../src/format';
import { GiB, kernel, nvmlVerdict, stepsVerdict } from './fixtures';

describe('numbers', () => {
  it('keeps three significant digits at most', () => {
    expect(shortNumber(12.4444)).toBe('12.4');
    expect(shortNumber(79.65)).toBe('79.7');
    expect(shortNumber(125.2)).toBe('125');
    expect(shortNumber(80)).toBe('80');
    expect(shortNumber(7.05)).toBe('7.05');
    expect(shortNumber(0.25)).toBe('0.25');
  });

  it('formats bytes in the chosen unit, small values in MiB/MB', () => {
    expect(formatBytes(12.4 * GiB)).toBe('12.4 GiB');
    expect(formatBytes(12.4e9, 'GB')).toBe('12.4 GB');
    expect(formatBytes(512 * 1024 ** 2)).toBe('512 MiB');
    expect(formatBytes(5e8, 'GB')).toBe('500 MB');
    expect(formatBytes(null)).toBe('n/a');
    expect(formatBytes(NaN)).toBe('n/a');
  });

  it('formats the H100 trace memory as the status bar shows it', () => {
    // mem_total of the bundled H100 trace
    expect(formatMemoryPair(15200550912, 85520809984, 'GiB')).toBe(
      '14.2/79.6 GiB'
    );
    expect(formatMemoryPair(15200550912, 85520809984, 'GB')).toBe(
      '15.2/85.5 GB'
    );
    expect(formatMemoryPair(1, null)).toBe('n/a');
  });

  it('formats percent, power, temperature', () => {
    expect(formatPercent(63.4)).toBe('63%');
    expect(formatPercent(undefined)).toBe('n/a');
    expect(formatPower(231400, 700000)).toBe('231/700 W');
    expect(formatPower(231400, null)).toBe('231 W');
    expect(formatPower(null, 700000)).toBe('n/a');
    expect(formatTemp(56)).toBe('56 °C');
  });

  it('bounds memory percent and rejects a zero total', () => {
    expect(memoryPercent(50, 100)).toBe(50);
    expect(memoryPercent(150, 100)).toBe(100);
    expect(memoryPercent(1, 0)).toBeNull();
  });
});

describe('axis tops', () => {
  it('rounds up to a readable value', () => {
    expect(niceCeil(62.7)).toBe(65);
    expect(niceCeil(0.83)).toBeCloseTo(0.85);
    expect(niceCeil(1234)).toBe(1500);
    expect(niceCeil(50)).toBe(50);
    expect(niceCeil(0)).toBe(1);
  });
});

describe('clocks', () => {
  it('leaves out an unknown clock', () => {
    expect(clocksText(1980, 2619)).toBe('SM 1980 MHz · Mem 2619 MHz');
    expect(clocksText(1980, null)).toBe('SM 1980 MHz');
    expect(clocksText(null, null)).toBe('n/a');
  });
});

describe('throttle reasons', () => {
  it('shows the words the server sends, deduplicated', () => {
    expect(throttleText(['software power cap', 'hardware slowdown'])).toBe(
      'software power cap, hardware slowdown'
    );
    expect(throttleText(['applications clock setting', 'power brake'])).toBe(
      'application clocks setting, power brake (external)'
    );
    expect(throttleText(['idle', 'idle'])).toBe('idle');
    expect(throttleText(['other (0x200)'])).toBe('other (0x200)');
    expect(throttleText([])).toBe('none');
    expect(throttleText(null)).toBe('n/a');
  });
});

describe('durations and leaks', () => {
  it('formats durations', () => {
    expect(formatDuration(12.2)).toBe('12 s');
    expect(formatDuration(240)).toBe('4 min');
    expect(formatDuration(7500)).toBe('2 h 5 min');
    expect(formatDuration(7200)).toBe('2 h');
    expect(formatDuration(3 * 86400)).toBe('3 d');
    expect(formatDuration(null)).toBe('n/a');
  });

  it('formats a growth rate per minute', () => {
    expect(formatRate(GiB / 60)).toBe('+1 GiB/min');
    expect(formatRate(-GiB / 60)).toBe('-1 GiB/min');
  });

  it('writes a forecast line from the leak verdict', () => {
    expect(leakText(null)).toBe('No verdict yet');
    expect(
      leakText(
        stepsVerdict({
          leak: false,
          actionable: false,
          bytes_per_second: null,
          seconds_to_oom: null,
          steps_to_oom: null,
          message: 'stable'
        })
      )
    ).toBe('stable');
    expect(
      leakText(
        stepsVerdict({
          bytes_per_second: (1.5 * GiB) / 60,
          seconds_to_oom: 720,
          steps_to_oom: 340.2,
          message: 'grows 1.5 GiB/min'
        })
      )
    ).toBe('Leak: +1.5 GiB/min, out of memory in about 12 min (~340 steps)');
    expect(
      leakText(
        stepsVerdict({
          actionable: false,
          bytes_per_second: null,
          seconds_to_oom: null,
          steps_to_oom: 50,
          message: ''
        })
      )
    ).toBe('Possible leak: out of memory ~50 steps');
    expect(
      leakText(nvmlVerdict({ bytes_per_second: GiB / 60, seconds_to_oom: 120 }))
    ).toBe('Leak: +1 GiB/min, out of memory in about 2 min');
  });
});

describe('missing readings', () => {
  it('says n/a live and not recorded on replay, and leaves values alone', () => {
    expect(missingText(throttleText(null), false)).toBe('n/a');
    expect(missingText(throttleText(null), true)).toBe('not recorded');
    expect(missingText(throttleText([]), true)).toBe('none');
    expect(missingText(formatPercent(63), true)).toBe('63%');
  });
});

describe('kernels', () => {
  it('says none for a kernel without GPU memory', () => {
    expect(kernelMemoryText(kernel({ memory: {} }))).toBe('none');
    expect(kernelMemoryText(kernel({ memory: { '0': GiB, '1': GiB } }))).toBe(
      '2 GiB'
    );
  });
});
