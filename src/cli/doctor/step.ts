import { CrossAppAccessError } from '../../errors.js';
import type { StepResult, StepStatus } from './types.js';

/** A step's outcome while it runs: add details, then finish with a status (and a fix on failure). */
export class Step {
  readonly details: string[] = [];
  private readonly started = performance.now();

  constructor(
    readonly id: string,
    readonly title: string,
  ) {}

  note(line: string): void {
    this.details.push(line);
  }

  end(status: StepStatus, fix?: string): StepResult {
    const result: StepResult = { id: this.id, title: this.title, status, durationMs: Math.round(performance.now() - this.started), details: this.details };
    if (fix !== undefined) result.fix = fix;
    return result;
  }
}

/**
 * Where the troubleshooting page is read: the repository's (package.json `repository`), as a URL,
 * since the npm package ships no docs/.
 */
export const DOCS_URL = 'https://github.com/cross-app-access/cross-app-access/blob/main/docs';
export const TROUBLESHOOTING_URL = `${DOCS_URL}/troubleshooting.md`;
const ISSUES_URL = 'https://github.com/cross-app-access/cross-app-access/issues';

/** The pointer that ends a fix: the troubleshooting page's section on it (symptom, cause, fix). */
export const see = (section: string): string => ` See ${TROUBLESHOOTING_URL}#${section}`;

/** A failure the doctor diagnosed: the step fails with `fix` as its advice. */
export class Diagnosis extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

/** Runs `work` as one step; a Diagnosis or a typed error of the package ends it as failed, with advice. */
export async function runStep<T>(step: Step, work: (step: Step) => Promise<T>, adviceFor: (error: CrossAppAccessError) => string): Promise<{ result: StepResult; value?: T }> {
  try {
    const value = await work(step);
    return { result: step.end(step.details.some((d) => d.startsWith('warning:')) ? 'warn' : 'pass'), value };
  } catch (error) {
    if (error instanceof Diagnosis) {
      step.note(error.message);
      return { result: step.end('fail', error.fix) };
    }
    if (error instanceof CrossAppAccessError) {
      step.note(`${error.code}: ${error.message}`);
      return { result: step.end('fail', adviceFor(error)) };
    }
    step.note(`unexpected: ${error instanceof Error ? error.message : String(error)}`);
    return { result: step.end('fail', `This looks like a bug in the doctor: please report it with this output at ${ISSUES_URL}.`) };
  }
}
