import { styleText } from 'node:util';
import { printable } from './terminal.js';
import type { DoctorReport, StepResult, StepStatus } from './types.js';

const MARK: Record<StepStatus, string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };
const COLOUR: Record<StepStatus, 'green' | 'yellow' | 'red' | 'gray'> = { pass: 'green', warn: 'yellow', fail: 'red', skip: 'gray' };

/** The last line: what the run proved, and where to look, only pointing at fixes that were printed. */
function verdict(report: DoctorReport): { status: StepStatus; text: string } {
  if (report.ok) return { status: 'pass', text: 'Every step passed.' };
  if (report.steps.some((s) => s.status === 'fail')) return { status: 'fail', text: 'Some steps failed: see the fixes above.' };
  const skipped = report.steps.filter((s): s is StepResult => s.status === 'skip');
  return { status: 'warn', text: `Not every step ran (${skipped.map((s) => s.details[0]?.replace(/^skipped: /, '') ?? s.title).join('; ')}): nothing failed, but the setup is not proven to work.` };
}

/**
 * The report for people: one block per step; colour only on a terminal. Every line is made
 * printable: details quote servers (issuers, URLs, error descriptions), which must not drive the
 * terminal.
 */
export function renderReport(report: DoctorReport, colour: boolean): string {
  const paint = (status: StepStatus, text: string) => (colour ? styleText(COLOUR[status], text) : text);
  const lines: string[] = [];
  for (const step of report.steps) {
    lines.push(`${paint(step.status, MARK[step.status])} ${printable(step.title)} (${step.durationMs} ms)`);
    for (const detail of step.details) lines.push(`    ${printable(detail)}`);
    if (step.fix) lines.push(`    ${paint(step.status, 'fix:')} ${printable(step.fix)}`);
  }
  const end = verdict(report);
  lines.push('', paint(end.status, end.text));
  return lines.join('\n');
}
