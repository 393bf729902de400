#!/usr/bin/env node
/**
 * Example stack. Context (`-c key=value` or cdk.json):
 *   clusters     comma list of cluster names, name@region for one in another region
 *                (required for a real deploy, unless discovery)
 *   discovery    true: also prune every cluster tagged eks-reaper=<clusterTagValue>
 *   clusterTagValue     the tag value for discovery (default enabled)
 *   discoveryRegions    comma list of regions searched (default the stack's region)
 *   lambdaZip    path to a prebuilt bootstrap.zip (or a directory holding `bootstrap`);
 *                without it, cargo-lambda-cdk runs `cargo lambda build --release --arm64`
 *                during synth
 *   alarmEmail   address subscribed to a new alarm topic
 *   alarmNotifications  none: deploy alarms without a destination (otherwise alarmEmail
 *                is required)
 *   dryRun       true | false | server
 *   metricsDetail  essential | full (default essential)
 *   fanOut       true: one invocation per cluster through an SQS FIFO queue
 *   fanOutParallelism  clusters at once with fanOut (default 10)
 *   roleName     name of the function's role (default eks-reaper-<region>)
 *   intervalMinutes  minutes between runs (default 5)
 *   heartbeatMissedRuns, backlogRuns, deleteErrorRuns, throttledRuns, forecastHours,
 *   subnetFreePercent  alarm thresholds (numbers); absoluteIpAlarms  true | false
 */
import 'source-map-support/register';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { EksReaper } from '../lib/eks-reaper';

const app = new App();
const ctx = (key: string): string | undefined => {
  const v = app.node.tryGetContext(key);
  return v === undefined || v === '' ? undefined : String(v);
};
const list = (v: string | undefined): string[] => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const discover = ctx('discovery') === 'true';
const clusters = list(ctx('clusters') ?? (discover ? '' : 'batch-prod')).map((c) => {
  const [name, region] = c.split('@');
  return region ? { name, region } : name;
});
/** A numeric context value, or undefined when not given. */
const num = (key: string): number | undefined => {
  const v = ctx(key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`context ${key} must be a non-negative number (got "${v}")`);
  return n;
};
const intervalMinutes = num('intervalMinutes');
const lambdaZip = ctx('lambdaZip');
const dryRun = ctx('dryRun');
const metricsDetail = ctx('metricsDetail') ?? 'essential';
if (metricsDetail !== 'essential' && metricsDetail !== 'full') {
  throw new Error(`context metricsDetail must be essential or full (got "${metricsDetail}")`);
}

const stack = new Stack(app, 'EksReaper', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: 'eks-reaper: prunes finished Jobs/Pods on EKS from outside the cluster',
});
new EksReaper(stack, 'Reaper', {
  clusters,
  discovery: discover
    ? { tagValue: ctx('clusterTagValue'), regions: ctx('discoveryRegions') ? list(ctx('discoveryRegions')) : undefined }
    : undefined,
  code: lambdaZip ? lambda.Code.fromAsset(lambdaZip) : undefined,
  dryRun: dryRun === 'server' ? 'server' : dryRun === 'true',
  alarmEmail: ctx('alarmEmail'),
  alarmNotifications: ctx('alarmNotifications') === 'none' ? 'none' : 'required',
  metricsDetail,
  fanOut: ctx('fanOut') === 'true',
  fanOutParallelism: ctx('fanOutParallelism') ? Number(ctx('fanOutParallelism')) : undefined,
  roleName: ctx('roleName'),
  interval: intervalMinutes === undefined ? undefined : Duration.minutes(intervalMinutes),
  thresholds: {
    heartbeatMissedRuns: num('heartbeatMissedRuns'),
    backlogRuns: num('backlogRuns'),
    deleteErrorRuns: num('deleteErrorRuns'),
    throttledRuns: num('throttledRuns'),
    forecastHours: num('forecastHours'),
    subnetFreePercent: num('subnetFreePercent'),
    absoluteIpAlarms: ctx('absoluteIpAlarms') === 'true',
  },
});
