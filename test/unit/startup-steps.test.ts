import { describe, expect, it } from '@jest/globals';
import { StartupSteps } from '../../src/extractor/startup-steps.ts';

describe('StartupSteps', () => {
  it('times each step from the mark before it, and the whole from a named step on', () => {
    const clock = [1000, 1200, 4200, 4250.4, 4300, 4900];
    let i = 0;
    const steps = new StartupSteps(() => clock[i++]!);
    steps.mark('preflight'); // 1200
    steps.mark('leader lock'); // 4200: waited 3 s
    steps.mark('open file'); // 4250.4
    steps.mark('open kafka'); // 4300
    steps.mark('open file'); // 4900: a repeated name adds up
    expect(steps.summary()).toEqual({
      preflight: 200,
      'leader lock': 3000,
      'open file': 650,
      'open kafka': 50,
    });
    expect(Object.keys(steps.summary())).toEqual(['preflight', 'leader lock', 'open file', 'open kafka']);
    expect(steps.sinceMs('leader lock')).toBe(700);
    expect(steps.sinceMs()).toBe(3900);
  });
});
