/**
 * "Who holds a GPU", the one function behind the GPU overview's and the
 * Cluster section's holder cells.
 */
import { HOLDERS_SHOWN, holdersText } from '../src/holders';
const GiB = 1024 ** 3;

const none = { text: 'idle', title: 'No processes' };

describe('holdersText', () => {
  it('says the empty text when nobody holds the GPU', () => {
    expect(holdersText([], { none })).toEqual({ ...none, count: 0 });
  });

  it('names the first holders in the given order, then +N', () => {
    const h = holdersText(
      [
        { name: 'a.ipynb', bytes: 5 * GiB },
        { name: 'bob: train', bytes: 4 * GiB },
        { name: 'carol: eval', bytes: GiB }
      ],
      { none }
    );
    expect(HOLDERS_SHOWN).toBe(2);
    expect(h.text).toBe('a.ipynb, bob: train +1');
    expect(h.count).toBe(3);
    expect(h.title.split('\n')).toEqual([
      'a.ipynb: 5 GiB',
      'bob: train: 4 GiB',
      'carol: eval: 1 GiB'
    ]);
  });

  it('adds a note after the memory in the tooltip, in the units asked', () => {
    const h = holdersText(
      [{ name: 'you: t.ipynb', bytes: 2 * GiB, note: 'idle 5 min' }],
      { none, units: 'GB' }
    );
    expect(h.text).toBe('you: t.ipynb');
    expect(h.title).toBe('you: t.ipynb: 2.15 GB (idle 5 min)');
  });

  it('counts the unnamed holders after the names, and in the count', () => {
    const others = {
      label: '2 other users',
      line: '2 other users (3 kernels)',
      count: 3,
      bytes: 12 * GiB
    };
    const h = holdersText([{ name: 'you: t.ipynb', bytes: GiB }], {
      none,
      others
    });
    expect(h.text).toBe('you: t.ipynb · 2 other users');
    expect(h.count).toBe(4);
    expect(h.title.split('\n')).toEqual([
      'you: t.ipynb: 1 GiB',
      '2 other users (3 kernels): 12 GiB'
    ]);
    const alone = holdersText([], { none, others });
    expect(alone.text).toBe('2 other users');
    expect(alone.count).toBe(3);
  });
});
