/**
 * The New benchmark torch check: which kernelspec is asked, and what its
 * silent user-expression reply means.
 */
import {
  kernelToCheck,
  parseTorchReply,
  TORCH_EXPRESSION
} from '../src/benchmarks/torch';

const spec = (name: string, display: string) => ({
  name,
  display_name: display,
  language: 'python',
  argv: [],
  resources: {}
});

describe('the torch check', () => {
  it("asks the templates' kernelspec, else the default one", () => {
    expect(
      kernelToCheck({
        default: 'other',
        kernelspecs: {
          python3: spec('python3', 'Python 3 (ipykernel)'),
          other: spec('other', 'Other')
        }
      })
    ).toEqual({ name: 'python3', displayName: 'Python 3 (ipykernel)' });
    expect(
      kernelToCheck({
        default: 'other',
        kernelspecs: { other: spec('other', 'Other') }
      })
    ).toEqual({ name: 'other', displayName: 'Other' });
    expect(kernelToCheck(null)).toBeNull();
  });

  it('reads True, False, or cannot tell', () => {
    const ok = (text: string) =>
      ({
        status: 'ok',
        execution_count: 0,
        user_expressions: {
          torch: { status: 'ok', data: { 'text/plain': text }, metadata: {} }
        }
      }) as any;
    expect(parseTorchReply(ok('True'))).toBe(true);
    expect(parseTorchReply(ok('False'))).toBe(false);
    expect(parseTorchReply(ok('None'))).toBeNull();
    expect(
      parseTorchReply({
        status: 'ok',
        user_expressions: { torch: { status: 'error', ename: 'NameError' } }
      } as any)
    ).toBeNull();
    expect(parseTorchReply({ status: 'error' } as any)).toBeNull();
    expect(parseTorchReply(undefined)).toBeNull();
  });

  it('does not import torch to find it', () => {
    expect(TORCH_EXPRESSION).toContain("find_spec('torch')");
    expect(TORCH_EXPRESSION).not.toMatch(/import torch/);
  });
});
