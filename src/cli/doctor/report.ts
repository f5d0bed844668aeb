import { styleText } from 'node:util';
import type { DoctorReport, StepStatus } from './types.js';

const MARK: Record<StepStatus, string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };
const COLOUR: Record<StepStatus, 'green' | 'yellow' | 'red' | 'gray'> = { pass: 'green', warn: 'yellow', fail: 'red', skip: 'gray' };

/** The report for people: one block per step; colour only on a terminal. */
export function renderReport(report: DoctorReport, colour: boolean): string {
  const paint = (status: StepStatus, text: string) => (colour ? styleText(COLOUR[status], text) : text);
  const lines: string[] = [];
  for (const step of report.steps) {
    lines.push(`${paint(step.status, MARK[step.status])} ${step.title} (${step.durationMs} ms)`);
    for (const detail of step.details) lines.push(`    ${detail}`);
    if (step.fix) lines.push(`    ${paint(step.status, 'fix:')} ${step.fix}`);
  }
  lines.push('', report.ok ? paint('pass', 'Every step passed.') : paint('fail', 'Some steps failed: see the fixes above.'));
  return lines.join('\n');
}
