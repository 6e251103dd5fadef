// The steps of one benchmark run, in order, and what the report calls them.

export const STEPS = [
  'backup1_initial',
  'backup2_nochange',
  'backup3_mutated',
  'restore_latest',
  'check_read_data',
  'forget_first',
  'gc_prune',
] as const;

export type StepName = (typeof STEPS)[number];

export const STEP_LABEL: Record<StepName, string> = {
  backup1_initial: 'first backup',
  backup2_nochange: 'backup, nothing changed',
  backup3_mutated: 'backup after edits',
  restore_latest: 'restore latest',
  check_read_data: 'check --read-data',
  forget_first: 'forget first snapshot',
  gc_prune: 'gc / prune',
};

/** Short labels for the chart's x axis. */
export const STEP_SHORT: Record<StepName, string> = {
  backup1_initial: 'first backup',
  backup2_nochange: 'unchanged',
  backup3_mutated: 'after edits',
  restore_latest: 'restore',
  check_read_data: 'check',
  forget_first: 'forget',
  gc_prune: 'gc/prune',
};

/** Issue 16's targets (encrypted snap against restic): snap's wall time divided by restic's, same round, at most this. */
export const TIME_TARGETS: Partial<Record<StepName, number>> = {
  backup1_initial: 0.6,
  backup2_nochange: 0.3,
  backup3_mutated: 0.5,
  restore_latest: 0.7,
  check_read_data: 0.8,
};

/** Repository size (snap / restic, after the backup after edits) at most this. */
export const REPO_SIZE_TARGET = 0.98;
/** Peak RSS (snap / restic) of each step at most this. */
export const RSS_TARGET = 1.0;
/** The steps whose peak RSS the target is for: those issue 16 times. */
export const RSS_STEPS: StepName[] = ['backup1_initial', 'backup2_nochange', 'backup3_mutated', 'restore_latest', 'check_read_data'];
