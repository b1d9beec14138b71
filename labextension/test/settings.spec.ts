import {
  clampInterval,
  DEFAULT_SETTINGS,
  parseSettings,
  windowLabel
} from '../src/settings';

describe('settings', () => {
  it('never goes below the server floor', () => {
    expect(clampInterval(0.01)).toBe(0.1);
    expect(clampInterval(0.2, 0.5)).toBe(0.5);
    expect(clampInterval(2, 0.5)).toBe(2);
    expect(clampInterval(1e6)).toBe(60);
    expect(clampInterval('x')).toBe(1);
  });

  it('fills defaults and rejects invalid values', () => {
    expect(parseSettings(null)).toEqual(DEFAULT_SETTINGS);
    const s = parseSettings({
      chartWindow: 42,
      memoryUnits: 'GB',
      metrics: { power: false, bogus: true },
      leakForecastMinutes: -3,
      showOtherUsersProcesses: false
    });
    expect(s.chartWindow).toBe(600);
    expect(s.memoryUnits).toBe('GB');
    expect(s.metrics.power).toBe(false);
    expect(s.metrics.utilization).toBe(true);
    expect((s.metrics as any).bogus).toBeUndefined();
    expect(s.leakForecastMinutes).toBe(30);
    expect(s.showOtherUsersProcesses).toBe(false);
  });

  it('labels the chart windows', () => {
    expect([60, 600, 3600].map(windowLabel)).toEqual([
      '1 min',
      '10 min',
      '1 h'
    ]);
  });
});
