/**
 * `EksReaper`: the eks-reaper Lambda with everything it needs to run unattended —
 * schedule, least-privilege IAM, EKS access entries, alarms and a dashboard. The SAM
 * reaper stack (`template.yaml`) as a reusable CDK construct, with the same resources,
 * alarm names and queries; on top of it, the typed cluster list scopes IAM to each
 * cluster's ARN and creates the access entries that SAM users get from
 * `infra/cluster-onboarding.yaml`. With `discovery`, each run also prunes the clusters
 * carrying the tag `eks-reaper=<tagValue>`, under the same tag-conditioned IAM as SAM.
 */
import * as path from 'node:path';
import { Annotations, Aws, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';

/** One cluster to prune. A plain string is a cluster in the stack's account and region. */
export interface ReaperCluster {
  /** EKS cluster name. */
  readonly name: string;
  /** Region of the cluster. @default the stack's region */
  readonly region?: string;
  /**
   * Role to assume for this cluster (cross-account). The function gets sts:AssumeRole on
   * it and no EKS permission of its own for the cluster; the access entry must be created
   * in the cluster's account, for this role.
   */
  readonly roleArn?: string;
}

/**
 * Cluster discovery: each run lists the clusters of these regions (`eks:ListClusters`) and
 * prunes those tagged `eks-reaper=<tagValue>`, besides the named ones. The role may describe
 * only clusters carrying that tag (an IAM tag condition), so IAM and discovery agree. A
 * discovered cluster needs its access entry from `infra/cluster-onboarding.yaml`.
 */
export interface ReaperDiscovery {
  /** Regions searched. @default the stack's region */
  readonly regions?: string[];
  /** Value of the `eks-reaper` tag marking a cluster to prune (SAM's `ClusterTagValue`). @default 'enabled' */
  readonly tagValue?: string;
  /**
   * Other accounts searched too (12-digit ids), each through its `memberRoleName` role
   * (`infra/member-account.yaml`); what is found there is pruned through that role. One id
   * per account instead of one ARN per cluster (Lambda's 4 KB environment). SAM's
   * `DiscoveryAccounts`. @default none
   */
  readonly accounts?: string[];
  /** The role assumed in each of `accounts` (SAM's `MemberRoleName`). @default 'eks-reaper-member' */
  readonly memberRoleName?: string;
}

/** Settings passed to the function as `REAPER_*` variables (docs/reference.md, Configuration). */
export interface ReaperSettings {
  readonly succeededJobTtl?: string;
  readonly failedJobTtl?: string;
  readonly fargatePodTtl?: string;
  readonly barePodTtl?: string;
  /** Least time a workflow engine's finished pod without its done marker is kept (REAPER_ENGINE_POD_GRACE). */
  readonly enginePodGrace?: string;
  /** The newest failed / succeeded Jobs of each owner kept whatever their retention (0: off). */
  readonly keepLastFailed?: number;
  readonly keepLastSucceeded?: number;
  /** A label naming the owner of Jobs no CronJob controls, for keepLastFailed/Succeeded. */
  readonly keepLastLabel?: string;
  readonly namespaces?: string[];
  readonly excludeNamespaces?: string[];
  readonly labelSelector?: string;
  /** Controllers (`group/Kind`) whose finished Jobs and pods are handed over to the reaper. */
  readonly pruneOwners?: string[];
  /** Sent with every `sts:AssumeRole` (cross-account roles that require an external id). */
  readonly externalId?: string;
  readonly respectNativeTtl?: boolean;
  readonly skipCronJobJobs?: boolean;
  /**
   * Read the namespaces' `eks-reaper/*` annotations (their own retentions or opt-out;
   * docs/tenants.md). Needs `list` on namespaces (infra/rbac). @default true
   */
  readonly namespaceAnnotations?: boolean;
  /**
   * One Kubernetes Event per namespace and run summarising its deletions. Needs `create` on
   * events (infra/rbac). @default false
   */
  readonly namespaceEvents?: boolean;
  readonly concurrency?: number;
  /**
   * Keep the median DELETE latency within this factor of the drain's baseline (its lowest
   * median at up to 4 in flight): `off`, or a number over 1 (REAPER_DRAIN_LATENCY_TARGET).
   * @default 3
   */
  readonly drainLatencyTarget?: string;
  readonly clusterConcurrency?: number;
  readonly pageSize?: number;
  readonly deadlineMargin?: string;
  readonly extraSubnets?: string[];
  readonly lowHeadroomFraction?: number;
  readonly lowHeadroomFargateTtl?: string;
  /** Short window of the IP exhaustion forecast (REAPER_FORECAST_WINDOW). */
  readonly forecastWindow?: string;
  readonly metricsPerNamespace?: boolean;
  /**
   * A Job or pod being deleted for longer than this (a finalizer nobody removes) is stuck
   * terminating: reported, and the objects-stuck-terminating alarm fires. Its finalizers
   * are never removed (docs/runbook.md#stuck-objects). @default '10m'
   */
  readonly stuckAfter?: string;
}

/** Alarm thresholds. Every alarm covers all clusters (Metrics Insights, GROUP BY ClusterName). */
export interface ReaperAlarmThresholds {
  /** Free share (%) of a cluster's tightest watched subnet (MinSubnetFreePercent). @default 10 */
  readonly subnetFreePercent?: number;
  /** Also alarm on absolute free-IP counts (the two thresholds below). @default false */
  readonly absoluteIpAlarms?: boolean;
  /** With absoluteIpAlarms: free IPs over all of a cluster's watched subnets. @default 500 */
  readonly clusterAvailableIps?: number;
  /** With absoluteIpAlarms: free IPs in a cluster's fullest watched subnet (MinSubnetAvailableIps). @default 100 */
  readonly subnetAvailableIps?: number;
  /** Forecast hours to IP exhaustion. @default 6 */
  readonly forecastHours?: number;
  /**
   * Consecutive runs without RunSucceeded before the heartbeat alarm fires. Times the
   * interval it must exceed the function timeout and be at most 3 hours (CloudWatch's
   * Metrics Insights alarm window); both checked at synth. @default 4
   */
  readonly heartbeatMissedRuns?: number;
  /**
   * Consecutive runs ending with a Backlog above 0 before the backlog alarm fires. Times
   * the interval at most 3 hours, as every run count here (checked at synth). @default 3
   */
  readonly backlogRuns?: number;
  /** Consecutive runs with DeleteErrors above 0 before the delete-errors alarm fires. @default 3 */
  readonly deleteErrorRuns?: number;
  /** Consecutive runs with Throttled (API 429s) above 0 before the api-throttled alarm fires. @default 3 */
  readonly throttledRuns?: number;
}

/** Where the function runs when the cluster endpoints are private. */
export interface ReaperVpcPlacement {
  readonly vpc: ec2.IVpc;
  /**
   * Subnets for the function's ENIs. Do not pick the Fargate subnets the reaper watches:
   * its own ENIs would take the IPs it protects.
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
}

export interface EksReaperProps {
  /** Clusters to prune. May be empty with `discovery`. */
  readonly clusters: Array<string | ReaperCluster>;
  /** Also prune every cluster tagged `eks-reaper=<tagValue>`, found each run. @default off */
  readonly discovery?: ReaperDiscovery;
  /**
   * A prebuilt deployment package (`Code.fromAsset('.../bootstrap.zip')` from
   * `cargo lambda build --release --arm64 --output-format zip`). When absent, the
   * function is a cargo-lambda-cdk `RustFunction` that runs `cargo lambda build` while the
   * stack is synthesized (only for stacks being synthesized/deployed: CDK skips bundling
   * for stacks outside `aws:cdk:bundling-stacks`).
   */
  readonly code?: lambda.Code;
  /** Cargo.toml of eks-reaper, for the RustFunction build. @default the repo root's */
  readonly manifestPath?: string;
  /**
   * Time between runs; alarm periods follow it, so each run count of `thresholds` times
   * the interval must be at most 3 hours (checked at synth). @default 5 minutes
   */
  readonly interval?: Duration;
  /** @default true */
  readonly scheduleEnabled?: boolean;
  /** Scheduler retries of a failed delivery. @default 0 (the next run is minutes away) */
  readonly scheduleRetryAttempts?: number;
  /**
   * Queue for runs that did not happen: failed schedule and emergency-rule deliveries, and
   * the function's on-failure destination (a run that failed, or waited longer than one
   * interval behind the one in flight). true creates one. @default none
   */
  readonly deadLetterQueue?: boolean | sqs.IQueue;
  /**
   * When a cluster's free-IP or forecast alarm goes to ALARM, run at once for that cluster
   * in low-headroom mode (an EventBridge rule on the alarm's per-cluster events). Needs a
   * metrics sink (the alarms). @default true
   */
  readonly emergencyRuns?: boolean;
  /**
   * One invocation per cluster through an SQS FIFO queue (docs/fleets.md): the schedule
   * (and each alarm) enqueues one message per cluster, the function prunes one cluster per
   * message. Use it above about 8 clusters. @default false
   */
  readonly fanOut?: boolean;
  /** With fanOut, clusters pruned at once (the mapping's maximum concurrency, 2-1000). @default 10 */
  readonly fanOutParallelism?: number;
  /** `true` reports only; `'server'` sends deletes with dryRun=All. @default false */
  readonly dryRun?: boolean | 'server';
  /**
   * MB. CPU grows with memory (one vCPU at 1,769 MB); the run is CPU-bound, not
   * memory-bound (peak RSS ~30 MB), so 1024 runs ~4x faster than 128 for ~2x the
   * GB-seconds of a scheduled run (see BENCHMARKS.md). @default 1024
   */
  readonly memorySize?: number;
  /** @default 900 seconds */
  readonly timeout?: Duration;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
  /** @default INFO */
  readonly logLevel?: lambda.ApplicationLogLevel;
  /** VPC placement, for private cluster endpoints. @default not in a VPC */
  readonly vpc?: ReaperVpcPlacement;
  /**
   * Kubernetes group of the access entries: bound by infra/rbac/eks-reaper-rbac.yaml and
   * matched by infra/rbac/eks-reaper-admission-policy.yaml (another name goes into both).
   * @default 'eks-reaper'
   */
  readonly kubernetesGroup?: string;
  /** Create an access entry per same-account cluster. @default true */
  readonly createAccessEntries?: boolean;
  /**
   * Name of the function's role (SAM's `ReaperRoleName`). Fixed, so its ARN is known
   * before the stack exists and unchanged when the stack is replaced: the ARN the
   * onboarding stacks (`infra/cluster-onboarding.yaml`) trust. IAM names are account-wide:
   * a second reaper in the same account and region needs another name.
   * @default `eks-reaper-<region>`
   */
  readonly roleName?: string;
  /** @default 'EKSReaper' */
  readonly metricsNamespace?: string;
  /** @default 'cloudwatch'. With 'none' no metric alarms are created. */
  readonly metricsSink?: 'cloudwatch' | 'emf' | 'none';
  /**
   * `'essential'`: only the metrics every alarm and the dashboard's core read, nothing per
   * subnet; `'full'`: every metric (needed by `thresholds.absoluteIpAlarms`). Dashboard
   * widgets on metrics `'essential'` does not publish are left out. @default 'essential'
   */
  readonly metricsDetail?: 'essential' | 'full';
  readonly settings?: ReaperSettings;
  readonly thresholds?: ReaperAlarmThresholds;
  /** Topic for alarm actions. */
  readonly alarmTopic?: sns.ITopic;
  /** When no alarmTopic is given, create a topic with this address subscribed. */
  readonly alarmEmail?: string;
  /**
   * `'required'`: synth fails unless alarmTopic or alarmEmail is given. `'none'`: alarms
   * that notify nobody, on purpose. @default 'required'
   */
  readonly alarmNotifications?: 'required' | 'none';
}

const DEFAULT_GROUP = 'eks-reaper';
const DEFAULT_NAMESPACE = 'EKSReaper';
/** The tag key of the IAM condition and of discovery (template.yaml fixes it too). */
const TAG_KEY = 'eks-reaper';
const DEFAULT_TAG_VALUE = 'enabled';
// template.yaml's AllowedPatterns for ClusterTagValue and DiscoveryRegions.
const TAG_VALUE_PATTERN = /^[A-Za-z0-9 _.:/=+@-]{1,256}$/;
const REGION_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)+$/;
// template.yaml's ReaperRoleName: IAM role names are 1-64 of these characters.
const ROLE_NAME_PATTERN = /^[A-Za-z0-9+=,.@_-]{1,64}$/;
/**
 * CloudWatch evaluates an alarm on a Metrics Insights query over the latest 3 hours only,
 * and PutMetricAlarm refuses a longer period x evaluation periods (CloudWatch User Guide,
 * "Limits that apply to alarms based on Metrics Insights queries"): the deployment would
 * roll back. Checked at synth for every such alarm (template.yaml: the Rules
 * AlarmWindowsFitThreeHoursEvery*).
 */
const METRICS_INSIGHTS_ALARM_WINDOW = Duration.hours(3);

export class EksReaper extends Construct {
  /** The eks-reaper function. */
  public readonly function: lambda.Function;
  /** Its execution role (principal of the EKS access entries). */
  public readonly role: iam.Role;
  public readonly schedule: scheduler.Schedule;
  /** The emergency-run rule, unless `emergencyRuns` is false or there are no metrics. */
  public readonly emergencyRule?: events.Rule;
  /** Alarm actions go here, when there is a topic. */
  public readonly alarmTopic?: sns.ITopic;
  /** Every alarm, by a stable key (`heartbeat`, `subnetsUnread`, `functionErrors`, ...). */
  public readonly alarms: Record<string, cloudwatch.Alarm> = {};
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: EksReaperProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const clusters = props.clusters.map((c) => (typeof c === 'string' ? { name: c } : c));
    if (clusters.length === 0 && !props.discovery) {
      throw new Error('EksReaper: clusters must name at least one cluster, or set discovery');
    }
    const discovery = props.discovery && {
      tagValue: props.discovery.tagValue ?? DEFAULT_TAG_VALUE,
      regions: [...new Set(props.discovery.regions ?? [])],
      accounts: [...new Set(props.discovery.accounts ?? [])],
      memberRoleName: props.discovery.memberRoleName ?? 'eks-reaper-member',
    };
    const badAccount = discovery?.accounts.find((a) => !Token.isUnresolved(a) && !/^[0-9]{12}$/.test(a));
    if (badAccount !== undefined) {
      throw new Error(`EksReaper: discovery.accounts must be 12-digit account ids (got "${badAccount}")`);
    }
    if (discovery && !Token.isUnresolved(discovery.memberRoleName) && !/^[A-Za-z0-9+=,.@_-]{1,64}$/.test(discovery.memberRoleName)) {
      throw new Error(`EksReaper: discovery.memberRoleName must be an IAM role name (got "${discovery.memberRoleName}")`);
    }
    if (discovery && !Token.isUnresolved(discovery.tagValue) && !TAG_VALUE_PATTERN.test(discovery.tagValue)) {
      throw new Error(`EksReaper: discovery.tagValue must match ${TAG_VALUE_PATTERN} (got "${discovery.tagValue}")`);
    }
    const badRegion = discovery?.regions.find((r) => !Token.isUnresolved(r) && !REGION_PATTERN.test(r));
    if (badRegion !== undefined) {
      throw new Error(`EksReaper: discovery.regions must be region names such as eu-west-1 (got "${badRegion}")`);
    }
    if (props.settings?.namespaces !== undefined && !props.settings.namespaces.some((n) => n.trim())) {
      // The function rejects a set-but-blank REAPER_NAMESPACES; say so at synth, not at 3 am.
      throw new Error('EksReaper: settings.namespaces is empty; omit it to prune every namespace');
    }
    const namespace = props.metricsNamespace ?? DEFAULT_NAMESPACE;
    const sink = props.metricsSink ?? 'cloudwatch';
    const detail = props.metricsDetail ?? 'essential';
    const full = detail === 'full';
    if (props.thresholds?.absoluteIpAlarms && !full) {
      // As template.yaml's AbsoluteIpAlarmsNeedFullMetrics rule.
      throw new Error("EksReaper: thresholds.absoluteIpAlarms needs metricsDetail: 'full' "
        + "('essential' publishes no absolute or per-subnet IP counts)");
    }
    const interval = props.interval ?? Duration.minutes(5);
    const group = props.kubernetesGroup ?? DEFAULT_GROUP;
    if (group.startsWith('system:')) {
      throw new Error(`EksReaper: kubernetesGroup must not start with "system:" (got ${group})`);
    }

    if ((props.alarmNotifications ?? 'required') === 'required' && !props.alarmTopic && !props.alarmEmail) {
      throw new Error("EksReaper: the alarms would notify nobody; give alarmTopic or alarmEmail, or alarmNotifications: 'none'");
    }
    const timeout = props.timeout ?? Duration.seconds(900);
    const fanOut = props.fanOut ?? false;
    const parallelism = props.fanOutParallelism ?? 10;
    if (fanOut && (!Number.isInteger(parallelism) || parallelism < 2 || parallelism > 1000)) {
      // Lambda's limits for an SQS mapping's maximum concurrency, as template.yaml's FanOutParallelism.
      throw new Error(`EksReaper: fanOutParallelism must be a whole number from 2 to 1000 (got ${parallelism})`);
    }
    const missedRuns = props.thresholds?.heartbeatMissedRuns ?? 4;
    if (!interval.isUnresolved() && !timeout.isUnresolved()
      && missedRuns * interval.toSeconds() <= timeout.toSeconds()) {
      // A single run in progress must not look like missed runs.
      throw new Error(`EksReaper: heartbeatMissedRuns x interval (${missedRuns} x ${interval.toSeconds()} s) `
        + `must exceed the function timeout (${timeout.toSeconds()} s)`);
    }

    // Retained with the stack: the logs are the record of what was deleted.
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Our own role, so nothing comes from AWSLambdaBasicExecutionRole (logs:* anywhere).
    // A fixed name, as template.yaml's: cross-account trusts name its ARN.
    const roleName = props.roleName ?? `eks-reaper-${stack.region}`;
    if (!Token.isUnresolved(roleName) && !ROLE_NAME_PATTERN.test(roleName)) {
      throw new Error(`EksReaper: roleName must be 1-64 characters of letters, digits and +=,.@_- (got "${roleName}", ${roleName.length} characters)`);
    }
    this.role = new iam.Role(this, 'Role', {
      roleName,
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'eks-reaper function role (EKS access is granted by access entry + RBAC)',
    });
    this.role.addToPolicy(new iam.PolicyStatement({
      sid: 'WriteOwnLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }));
    this.role.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadSubnetHeadroom',
      // ec2:DescribeSubnets supports no resource-level permissions.
      actions: ['ec2:DescribeSubnets'],
      resources: ['*'],
    }));
    if (sink === 'cloudwatch') {
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'PublishMetricsToOwnNamespace',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': namespace } },
      }));
    }
    const local = clusters.filter((c) => !c.roleArn);
    const remote = clusters.filter((c) => c.roleArn);
    local.forEach((c, i) => {
      const arn = (type: string, resourceName: string) => stack.formatArn({
        service: 'eks', region: c.region ?? stack.region, resource: type, resourceName,
      });
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: `Cluster${i}`,
        // Both take the `cluster` resource type.
        actions: ['eks:DescribeCluster', 'eks:ListFargateProfiles'],
        resources: [arn('cluster', c.name)],
      }));
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: `FargateProfiles${i}`,
        // Takes the `fargateprofile` type: fargateprofile/<cluster>/<profile>/<uuid>.
        actions: ['eks:DescribeFargateProfile'],
        resources: [arn('fargateprofile', `${c.name}/*`)],
      }));
    });
    if (discovery) {
      // As template.yaml: clusters carrying the tag, in the stack's region, or with
      // regions, in any region of the ARN and exactly those requested regions.
      const regions = discovery.regions;
      const arn = (type: string) => stack.formatArn({
        service: 'eks', region: regions.length > 0 ? '*' : stack.region, resource: type, resourceName: '*',
      });
      const inRegions = regions.length > 0 ? { 'aws:RequestedRegion': regions } : {};
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'DescribeTaggedClusters',
        actions: ['eks:DescribeCluster', 'eks:ListFargateProfiles'],
        resources: [arn('cluster')],
        conditions: { StringEquals: { [`aws:ResourceTag/${TAG_KEY}`]: discovery.tagValue, ...inRegions } },
      }));
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'DescribeFargateProfiles',
        // A profile's tags are its own, not the cluster's; its name comes from the tagged
        // cluster's ListFargateProfiles.
        actions: ['eks:DescribeFargateProfile'],
        resources: [arn('fargateprofile')],
        conditions: regions.length > 0 ? { StringEquals: inRegions } : undefined,
      }));
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'ListClustersToDiscover',
        // No resource type: the region condition is the scope.
        actions: ['eks:ListClusters'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:RequestedRegion': regions.length > 0 ? regions : stack.region } },
      }));
    }
    if (discovery && discovery.accounts.length > 0) {
      // The member role of each discovery account and no other.
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'AssumeMemberRoles',
        actions: ['sts:AssumeRole'],
        resources: discovery.accounts.map((account) => stack.formatArn({
          service: 'iam', region: '', account, resource: 'role', resourceName: discovery.memberRoleName,
        })),
      }));
    }
    if (remote.length > 0) {
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'AssumeClusterRoles',
        actions: ['sts:AssumeRole'],
        resources: [...new Set(remote.map((c) => c.roleArn!))],
      }));
    }
    const dlq = props.deadLetterQueue === true
      ? new sqs.Queue(this, 'ScheduleDeadLetterQueue', {
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      })
      : props.deadLetterQueue || undefined;
    const functionProps: lambda.FunctionOptions = {
      description: 'Prunes finished Jobs/Pods on EKS and watches subnet IP headroom',
      role: this.role,
      memorySize: props.memorySize ?? 1024,
      timeout,
      architecture: lambda.Architecture.ARM_64,
      // One run at a time: a run still going when the next is due makes the next wait.
      // With fanOut the queue's FIFO groups keep one run per cluster instead.
      reservedConcurrentExecutions: fanOut ? undefined : 1,
      // A throttled (overlapping) run waits in Lambda's async queue at most one interval.
      maxEventAge: Duration.seconds(Math.max(60, Math.min(21600, interval.toSeconds()))),
      retryAttempts: 0,
      onFailure: dlq ? new destinations.SqsDestination(dlq) : undefined,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: props.logLevel ?? lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      logGroup,
      environment: reaperEnvironment(clusters, props, namespace, sink, detail, discovery),
      vpc: props.vpc?.vpc,
      vpcSubnets: props.vpc?.vpcSubnets,
      securityGroups: props.vpc?.securityGroups,
    };
    this.function = props.code
      ? new lambda.Function(this, 'Function', {
        ...functionProps,
        code: props.code,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        handler: 'bootstrap',
      })
      : new RustFunction(this, 'Function', {
        ...functionProps,
        manifestPath: props.manifestPath ?? path.join(__dirname, '..', '..', 'Cargo.toml'),
        binaryName: 'eks-reaper',
        bundling: { architecture: lambda.Architecture.ARM_64 },
      });

    if (props.vpc) {
      // As template.yaml: what AWSLambdaVPCAccessExecutionRole grants for ENIs, without its
      // logs:*, scoped to the function's own subnets and security groups (the ones CDK
      // creates when none are given). Here the ARNs are exact.
      const ec2Arn = (resource: string, resourceName: string) => stack.formatArn({ service: 'ec2', resource, resourceName });
      const subnetIds = props.vpc.vpc.selectSubnets(props.vpc.vpcSubnets).subnetIds;
      const groupIds = this.function.connections.securityGroups.map((g) => g.securityGroupId);
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'CreateEnisInOwnSubnets',
        actions: ['ec2:CreateNetworkInterface'],
        resources: [
          ...subnetIds.map((id) => ec2Arn('subnet', id)),
          ...groupIds.map((id) => ec2Arn('security-group', id)),
          ec2Arn('network-interface', '*'),
        ],
      }));
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'ManageOwnEnis',
        actions: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
        resources: [ec2Arn('network-interface', '*')],
      }));
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'DescribeEnis',
        // Describe* actions support no resource-level permissions (ec2:DescribeSubnets is
        // ReadSubnetHeadroom's already).
        actions: ['ec2:DescribeNetworkInterfaces'],
        resources: ['*'],
      }));
    }

    // --- fan-out: one message and one invocation per cluster (docs/fleets.md) -------------
    if (fanOut) {
      const runDlq = new sqs.Queue(this, 'RunDeadLetterQueue', {
        fifo: true,
        retentionPeriod: Duration.days(14),
      });
      const runQueue = new sqs.Queue(this, 'RunQueue', {
        fifo: true,
        // Lambda requires at least the function's timeout. A crashed run holds its
        // cluster's group this long; not AWS's 6x against throttling, because the mapping's
        // maximum concurrency keeps the queue from throttling the function.
        visibilityTimeout: Duration.seconds(timeout.toSeconds() + 60),
        retentionPeriod: Duration.hours(1),
        deadLetterQueue: { queue: runDlq, maxReceiveCount: 3 },
      });
      this.function.addEnvironment('REAPER_QUEUE_URL', runQueue.queueUrl);
      // What the planner needs to tell a cluster that stopped reporting (docs/fleets.md).
      this.function.addEnvironment('REAPER_SCHEDULE_INTERVAL', `${interval.toSeconds()}s`);
      this.function.addEnvironment('REAPER_NOT_REPORTED_RUNS', String(missedRuns));
      if (sink !== 'none') {
        this.role.addToPolicy(new iam.PolicyStatement({
          sid: 'ReadWhichClustersReported',
          // GetMetricData has no resource type and no namespace condition key.
          actions: ['cloudwatch:GetMetricData'],
          resources: ['*'],
        }));
      }
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'PlanRunsOntoTheQueue',
        // SendMessageBatch is authorized as sqs:SendMessage.
        actions: ['sqs:SendMessage'],
        resources: [runQueue.queueArn],
      }));
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'ConsumeRunQueue',
        // What Lambda's event source mapping calls with the function's role.
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ChangeMessageVisibility'],
        resources: [runQueue.queueArn],
      }));
      new lambda.EventSourceMapping(this, 'RunQueueMapping', {
        target: this.function,
        eventSourceArn: runQueue.queueArn,
        // One cluster per invocation, with the whole invocation's budget.
        batchSize: 1,
        reportBatchItemFailures: true,
        maxConcurrency: parallelism,
      });
    }

    // --- schedule ------------------------------------------------------------------------
    // No `clusters` when none is named (discovery only): the function refuses an empty list.
    const input: Record<string, unknown> = {
      ...(clusters.length > 0 ? {
        clusters: clusters.map((c) => (c.region || c.roleArn
          ? { name: c.name, ...(c.region ? { region: c.region } : {}), ...(c.roleArn ? { roleArn: c.roleArn } : {}) }
          : c.name)),
      } : {}),
      dryRun: props.dryRun ?? false,
    };
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'eks-reaper run',
      schedule: scheduler.ScheduleExpression.rate(interval),
      enabled: props.scheduleEnabled ?? true,
      target: new targets.LambdaInvoke(this.function, {
        // Scheduler sends this JSON as the event, with no envelope.
        input: scheduler.ScheduleTargetInput.fromObject(input),
        retryAttempts: props.scheduleRetryAttempts ?? 0,
        maxEventAge: Duration.seconds(Math.max(60, Math.min(86400, interval.toSeconds()))),
        deadLetterQueue: dlq,
      }),
    });

    // --- EKS access ----------------------------------------------------------------------
    if (props.createAccessEntries ?? true) {
      local.forEach((c) => {
        if (c.region && !Token.isUnresolved(stack.region) && c.region !== stack.region) {
          Annotations.of(this).addWarningV2('eks-reaper:access-entry-region',
            `No access entry for ${c.name}: it is in ${c.region}, not ${stack.region}. Create it there.`);
          return;
        }
        new eks.CfnAccessEntry(this, `AccessEntry-${c.name}`, {
          clusterName: c.name,
          principalArn: this.role.roleArn,
          type: 'STANDARD',
          // No access policy: the group's ClusterRole (infra/rbac) is all it can do.
          kubernetesGroups: [group],
        });
      });
    }

    // --- alarms --------------------------------------------------------------------------
    if (props.alarmTopic) {
      this.alarmTopic = props.alarmTopic;
    } else if (props.alarmEmail) {
      // Not KMS-encrypted on purpose: CloudWatch alarms cannot publish to a topic
      // encrypted with the AWS-managed SNS key. Pass your own topic for a CMK.
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'eks-reaper alarms' });
      topic.addSubscription(new subs.EmailSubscription(props.alarmEmail));
      this.alarmTopic = topic;
    }
    const t = props.thresholds ?? {};
    const period = interval;
    // Fleet-wide, as in template.yaml: one Metrics Insights alarm per condition, each
    // cluster a contributor (GROUP BY ClusterName), so clusters added later are covered.
    // Names are the SAM ones, so docs/runbook.md's names match either deployment.
    // `runsProp` names the prop that set evaluationPeriods, for the window check's message.
    const fleetAlarm = (key: string, id: string, name: string, description: string, query: string,
      label: string, opts: Omit<cloudwatch.AlarmProps, 'metric'>, runsProp?: string) => {
      checkMetricsInsightsWindow(name, interval, opts.evaluationPeriods, runsProp);
      this.alarms[key] = new cloudwatch.Alarm(this, id, {
        alarmName: `${Aws.STACK_NAME}-${name}`,
        alarmDescription: description,
        metric: new cloudwatch.MathExpression({ label, expression: query, usingMetrics: {}, period }),
        ...opts,
      });
    };
    // Worst first, at most 500 series: a query returning more, or matching more than
    // 10,000 metrics, evaluates on PARTIAL_DATA. `worst` is ASC for a low-value alarm.
    const byCluster = (fn: string, name: string, worst: 'ASC' | 'DESC') =>
      `${insights(fn, name, namespace, CLUSTER_SCHEMA)} GROUP BY ${CLUSTER_GROUP} ORDER BY ${fn}() ${worst} LIMIT ${MAX_ALARM_SERIES}`;

    if (sink !== 'none') {
      fleetAlarm('heartbeat', 'Heartbeat', 'heartbeat-missing',
        `A cluster had no successful eks-reaper run for ${missedRuns} scheduled runs (RunSucceeded is 0 when its run failed). Nothing is pruning it. Runbook: docs/runbook.md#heartbeat-missing`,
        byCluster('SUM', 'RunSucceeded', 'ASC'), 'Successful runs per cluster', {
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: missedRuns,
          datapointsToAlarm: missedRuns,
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        }, 'thresholds.heartbeatMissedRuns');
      fleetAlarm('reportsMissing', 'ReportsMissing', 'reports-missing',
        `No cluster reported anything for ${missedRuns} scheduled runs: the schedule is off, the function does not start or cannot publish metrics. Runbook: docs/runbook.md#reports-missing`,
        insights('COUNT', 'RunSucceeded', namespace, CLUSTER_SCHEMA), 'Clusters reporting a run', {
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: missedRuns,
          datapointsToAlarm: missedRuns,
          // Absence is the signal: a reaper that stopped publishes nothing.
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        }, 'thresholds.heartbeatMissedRuns');
      if (fanOut) {
        // Not a Metrics Insights alarm: one fleet-wide series the planner publishes each plan.
        this.alarms.clustersNotReported = new cloudwatch.Alarm(this, 'ClustersNotReported', {
          alarmName: `${Aws.STACK_NAME}-clusters-not-reported`,
          alarmDescription: `A cluster the planner enqueued published no run for ${missedRuns} scheduled runs: its messages are stuck or in the dead-letter queue, or its runs die before publishing. The plan's report and log name it. Runbook: docs/runbook.md#clusters-not-reported`,
          metric: new cloudwatch.Metric({ namespace, metricName: 'ClustersNotReported', period, statistic: 'Maximum' }),
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          // A planner that stops publishing is reports-missing's to catch.
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        });
      }
      fleetAlarm('subnetsUnread', 'SubnetsUnread', 'subnets-unread',
        'The reaper could not read a cluster\'s subnets (SubnetsRead 0 or missing) at two runs in a row: the IP alarms are blind for it. Runbook: docs/runbook.md#subnets-unread',
        byCluster('MIN', 'SubnetsRead', 'ASC'), 'Subnets read per cluster', {
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: 2,
          datapointsToAlarm: 2,
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        });
      const freePercent = t.subnetFreePercent ?? 10;
      fleetAlarm('subnetFreePercent', 'SubnetFreePercentLow', 'subnet-free-percent-low',
        `A cluster's tightest watched subnet has less than ${freePercent}% of its addresses free. New (Fargate) pods there will soon fail to get an IP. Runbook: docs/runbook.md#subnet-free-percent-low`,
        byCluster('MIN', 'MinSubnetFreePercent', 'ASC'), 'Free share of the tightest subnet per cluster', {
          threshold: freePercent,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: 1,
          // Not published when the subnets were not read: that is subnets-unread.
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        });
      const hours = t.forecastHours ?? 6;
      fleetAlarm('forecast', 'IpForecast', 'ip-exhaustion-forecast',
        `At the current rate a cluster's watched subnets run out of IPs within ${hours} h. Runbook: docs/runbook.md#ip-exhaustion-forecast`,
        byCluster('MIN', 'IpExhaustionHours', 'ASC'), 'Forecast hours to IP exhaustion per cluster', {
          threshold: hours,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: 2,
          datapointsToAlarm: 2,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        });
      const backlogRuns = t.backlogRuns ?? 3;
      fleetAlarm('backlog', 'Backlog', 'backlog-not-draining',
        `A cluster ended each of the last ${backlogRuns} runs with finished objects due for deletion left undeleted: the reaper is not keeping up. Runbook: docs/runbook.md#backlog-not-draining`,
        byCluster('MIN', 'Backlog', 'DESC'), 'Lowest backlog per cluster', {
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: backlogRuns,
          datapointsToAlarm: backlogRuns,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }, 'thresholds.backlogRuns');
      const deleteErrorRuns = t.deleteErrorRuns ?? 3;
      fleetAlarm('deleteErrors', 'DeleteErrors', 'delete-errors',
        `A cluster had delete errors at each of the last ${deleteErrorRuns} runs (RBAC, admission webhooks, API errors). Runbook: docs/runbook.md#delete-errors`,
        byCluster('SUM', 'DeleteErrors', 'DESC'), 'Delete errors per cluster', {
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: deleteErrorRuns,
          datapointsToAlarm: deleteErrorRuns,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }, 'thresholds.deleteErrorRuns');
      const throttledRuns = t.throttledRuns ?? 3;
      fleetAlarm('apiThrottled', 'ApiThrottled', 'api-throttled',
        `A cluster's API server answered 429 (Throttled) at each of the last ${throttledRuns} runs. Runbook: docs/runbook.md#api-throttled`,
        byCluster('SUM', 'Throttled', 'DESC'), 'API 429s per cluster', {
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: throttledRuns,
          datapointsToAlarm: throttledRuns,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }, 'thresholds.throttledRuns');
      const stuckAfter = props.settings?.stuckAfter ?? '10m';
      fleetAlarm('stuckObjects', 'StuckObjects', 'objects-stuck-terminating',
        `A cluster has Jobs or pods being deleted for longer than ${stuckAfter}: a finalizer nobody removes holds them, and on Fargate each keeps its node and IP. eks-reaper never removes finalizers. Runbook: docs/runbook.md#stuck-objects`,
        byCluster('MAX', 'StuckObjects', 'DESC'), 'Objects stuck terminating per cluster', {
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          // stuckAfter is the delay: one run that finds an object stuck is enough.
          evaluationPeriods: 1,
          // essential sends StuckObjects only when it is not 0.
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        });
      if (t.absoluteIpAlarms) {
        const clusterIps = t.clusterAvailableIps ?? 500;
        fleetAlarm('clusterIps', 'ClusterIpsLow', 'cluster-available-ips-low',
          `A cluster's free IPs over all its watched subnets are under ${clusterIps}. Runbook: docs/runbook.md#cluster-available-ips-low`,
          byCluster('MIN', 'ClusterAvailableIps', 'ASC'), 'Free IPs per cluster', {
            threshold: clusterIps,
            comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluationPeriods: 1,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          });
        const subnetIps = t.subnetAvailableIps ?? 100;
        // One series per cluster (its fullest subnet), not one per subnet: a query returning
        // over 500 series evaluates on PARTIAL_DATA (CloudWatch, "Limits that apply to
        // alarms based on Metrics Insights queries"), which per subnet came at ~50 clusters.
        fleetAlarm('subnetIps', 'SubnetIpsLow', 'subnet-available-ips-low',
          `A cluster's fullest watched subnet has fewer than ${subnetIps} free IPs. Runbook: docs/runbook.md#subnet-available-ips-low`,
          byCluster('MIN', 'MinSubnetAvailableIps', 'ASC'), 'Free IPs of the fullest subnet per cluster', {
            threshold: subnetIps,
            comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluationPeriods: 1,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          });
      }
    }
    // --- emergency runs --------------------------------------------------------------------
    // As template.yaml's EmergencyRule: each cluster is a contributor of the free-IP and
    // forecast alarms, and a contributor going to ALARM sends an event naming it.
    if (sink !== 'none' && (props.emergencyRuns ?? true)) {
      const triggers = ['subnetFreePercent', 'forecast', 'clusterIps', 'subnetIps']
        .filter((key) => this.alarms[key])
        .map((key) => this.alarms[key].alarmName);
      this.emergencyRule = new events.Rule(this, 'EmergencyRule', {
        description: "eks-reaper emergency run when a cluster's IP alarm goes to ALARM",
        eventPattern: {
          source: ['aws.cloudwatch'],
          detailType: ['CloudWatch Alarm Contributor State Change'],
          detail: { alarmName: triggers, state: { value: ['ALARM'] } },
        },
        targets: [new eventsTargets.LambdaFunction(this.function, {
          retryAttempts: 2,
          maxEventAge: Duration.seconds(Math.max(60, Math.min(86400, interval.toSeconds()))),
          deadLetterQueue: dlq,
        })],
      });
    }
    this.alarms.functionErrors = new cloudwatch.Alarm(this, 'FunctionErrors', {
      alarmName: `${Aws.STACK_NAME}-function-errors`,
      alarmDescription: 'The eks-reaper function failed (bad configuration, crash, timeout). Per-object delete failures are the DeleteErrors metric. Runbook: docs/runbook.md#function-errors',
      metric: this.function.metricErrors({ period, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    // Run health from AWS's own metrics, whatever the metrics sink.
    const overZero = {
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    };
    this.alarms.functionThrottles = new cloudwatch.Alarm(this, 'FunctionThrottles', {
      alarmName: `${Aws.STACK_NAME}-function-throttles`,
      alarmDescription: 'Lambda throttled an invocation of the eks-reaper function: with reserved concurrency 1, a run was due while the previous one was still going. Runbook: docs/runbook.md#function-throttles',
      metric: this.function.metricThrottles({ period, statistic: 'Sum' }),
      ...overZero,
    });
    this.alarms.durationNearTimeout = new cloudwatch.Alarm(this, 'DurationNearTimeout', {
      alarmName: `${Aws.STACK_NAME}-duration-near-timeout`,
      alarmDescription: `An eks-reaper run took more than 80 % of the ${timeout.toSeconds()} s function timeout. Runbook: docs/runbook.md#duration-near-timeout`,
      metric: this.function.metricDuration({ period, statistic: 'Maximum' }),
      ...overZero,
      threshold: timeout.toMilliseconds() * 0.8,
    });
    // AWS/Scheduler publishes per schedule group, not per schedule: the schedule is in
    // the account's default group, so these also count that group's other schedules.
    const schedulerMetric = (metricName: string) => new cloudwatch.Metric({
      namespace: 'AWS/Scheduler', metricName, dimensionsMap: { ScheduleGroup: 'default' }, period, statistic: 'Sum',
    });
    this.alarms.scheduleTargetErrors = new cloudwatch.Alarm(this, 'ScheduleTargetErrors', {
      alarmName: `${Aws.STACK_NAME}-schedule-target-errors`,
      alarmDescription: 'EventBridge Scheduler could not invoke its target (TargetErrorCount of the default schedule group): the function was not started. Runbook: docs/runbook.md#schedule-target-errors',
      metric: schedulerMetric('TargetErrorCount'),
      ...overZero,
    });
    this.alarms.scheduleDropped = new cloudwatch.Alarm(this, 'ScheduleDropped', {
      alarmName: `${Aws.STACK_NAME}-schedule-invocations-dropped`,
      alarmDescription: 'EventBridge Scheduler gave up on an invocation after its retry policy (InvocationDroppedCount of the default schedule group): a run never happened. Runbook: docs/runbook.md#schedule-invocations-dropped',
      metric: schedulerMetric('InvocationDroppedCount'),
      ...overZero,
    });
    if (dlq) {
      this.alarms.scheduleDeadLetter = new cloudwatch.Alarm(this, 'ScheduleDeadLetter', {
        alarmName: `${Aws.STACK_NAME}-schedule-dlq-not-empty`,
        alarmDescription: "The schedule's dead-letter queue holds undelivered run events. Runbook: docs/runbook.md#schedule-dlq-not-empty",
        metric: dlq.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        ...overZero,
      });
    }
    if (this.alarmTopic) {
      const action = new cwActions.SnsAction(this.alarmTopic);
      for (const alarm of Object.values(this.alarms)) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }

    // --- dashboard -----------------------------------------------------------------------
    // Metrics Insights queries: one line per cluster (or subnet), whatever the cluster list.
    const q = (label: string, fn: string, name: string, schema = CLUSTER_SCHEMA, groupBy = CLUSTER_GROUP) =>
      new cloudwatch.MathExpression({
        label, period, usingMetrics: {},
        expression: `${insights(fn, name, namespace, schema)} GROUP BY ${groupBy}`,
      });
    const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: 12, height: 6, period, ...extra });
    // With metricsDetail 'essential', widgets and lines on metrics it does not publish are
    // left out (as template.yaml's FullMetricsDetail condition does), so none shows empty.
    const ifFull = <T>(...items: T[]): T[] => (full ? items : []);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(24),
      widgets: [
        [
          ...ifFull(graph('Free IPs per subnet',
            [q('', 'MIN', 'SubnetAvailableIps', SUBNET_SCHEMA, `${CLUSTER_GROUP}, AvailabilityZone, SubnetId`)])),
          graph('IP exhaustion forecast (hours)', [q('', 'MIN', 'IpExhaustionHours')],
            { leftAnnotations: [{ label: 'Forecast alarm threshold', value: t.forecastHours ?? 6 }] }),
        ],
        [
          // essential publishes one deletion count (ObjectsDeleted), full the split.
          graph('Deletions per run', full ? [
            q('Jobs deleted', 'SUM', 'JobsDeleted'),
            q('Pods deleted', 'SUM', 'PodsDeleted'),
            q('Fargate pods deleted', 'SUM', 'FargatePodsDeleted'),
          ] : [
            q('Jobs and pods deleted', 'SUM', 'ObjectsDeleted'),
          ], { stacked: true }),
          ...ifFull(graph('Terminated pods and Fargate pods holding IPs', [
            q('Terminated pods', 'MAX', 'TerminatedPods'),
            q('Fargate pods holding IPs', 'MAX', 'FargatePodsHoldingIps'),
          ])),
        ],
        [
          graph(full ? 'Backlog (due but not yet deleted) and finished Jobs' : 'Backlog (due but not yet deleted)', [
            q('Backlog', 'MAX', 'Backlog'),
            ...ifFull(q('Finished Jobs', 'MAX', 'FinishedJobs')),
          ]),
          graph('Throttles and errors', [
            q('API 429s', 'SUM', 'Throttled'),
            q('Delete errors', 'SUM', 'DeleteErrors'),
            this.function.metricErrors({ period, statistic: 'Sum', label: 'Function errors' }),
            this.function.metricThrottles({ period, statistic: 'Sum', label: 'Function throttles (overlapping runs)' }),
          ]),
        ],
        [
          graph(full ? 'Heartbeat (successful runs) and low-headroom mode' : 'Heartbeat (successful runs) and subnets read', [
            q('RunSucceeded', 'SUM', 'RunSucceeded'),
            q('Subnets read', 'MIN', 'SubnetsRead'),
            ...ifFull(q('Low-headroom mode', 'MAX', 'LowHeadroomMode')),
          ]),
          graph('Run duration (ms)', [
            ...ifFull(q('RunDuration', 'MAX', 'RunDuration')),
            this.function.metricDuration({ period, statistic: 'Maximum', label: 'Lambda duration' }),
          ]),
        ],
        [
          graph('Free share of the tightest subnet (%)', [q('', 'MIN', 'MinSubnetFreePercent')],
            { leftAnnotations: [{ label: 'Free-share alarm threshold', value: t.subnetFreePercent ?? 10 }] }),
          graph('Objects stuck terminating', [
            q('Jobs and pods stuck terminating', 'MAX', 'StuckObjects'),
            ...ifFull(q('Fargate pods stuck terminating (each holds an IP)', 'MAX', 'StuckFargatePods')),
          ]),
        ],
      ],
    });
  }
}

// A cluster is its account, Region and name (the metrics' dimensions): the same name in two
// accounts or Regions is two series and two alarm contributors.
const SUBNET_SCHEMA = 'Account, AvailabilityZone, ClusterName, Region, SubnetId';

const CLUSTER_SCHEMA = 'Account, ClusterName, Region';

const CLUSTER_GROUP = 'Account, Region, ClusterName';
/** Most series a Metrics Insights alarm query may return without evaluating on PARTIAL_DATA. */
const MAX_ALARM_SERIES = 500;

/**
 * Refuses at synth a Metrics Insights alarm whose window (interval x evaluation periods)
 * CloudWatch would refuse: see METRICS_INSIGHTS_ALARM_WINDOW. `runsProp` names the prop
 * that set the evaluation periods; without one they are fixed and the interval is too long.
 */
function checkMetricsInsightsWindow(alarm: string, interval: Duration, evaluationPeriods: number, runsProp?: string): void {
  if (interval.isUnresolved() || Token.isUnresolved(evaluationPeriods)) return;
  const limit = METRICS_INSIGHTS_ALARM_WINDOW.toSeconds();
  const seconds = interval.toSeconds();
  if (evaluationPeriods * seconds <= limit) return;
  const window = `${evaluationPeriods} x ${seconds} s = ${evaluationPeriods * seconds} s`;
  const why = `CloudWatch evaluates a Metrics Insights alarm over 3 hours (${limit} s) at most`;
  throw new Error(runsProp
    ? `EksReaper: ${runsProp} x interval (${window}) exceeds 3 hours for the ${alarm} alarm: ${why}. `
      + `With a ${seconds} s interval, ${runsProp} may be at most ${Math.floor(limit / seconds)}`
    : `EksReaper: interval (${seconds} s) is too long for the ${alarm} alarm (${window}): ${why}. `
      + `The interval may be at most ${Math.floor(limit / evaluationPeriods)} s`);
}

/** A Metrics Insights query over the reaper's namespace. */
function insights(fn: string, metricName: string, namespace: string, schema: string): string {
  if (namespace.includes('"')) {
    throw new Error(`EksReaper: metricsNamespace must not contain '"' (got ${namespace})`);
  }
  return `SELECT ${fn}(${metricName}) FROM SCHEMA("${namespace}", ${schema})`;
}

/** The function's `REAPER_*` environment; unset settings are left to the binary's defaults. */
function reaperEnvironment(
  clusters: ReaperCluster[],
  props: EksReaperProps,
  namespace: string,
  sink: string,
  detail: string,
  discovery: { tagValue: string; regions: string[]; accounts: string[]; memberRoleName: string } | undefined,
): Record<string, string> {
  const s = props.settings ?? {};
  const env: Record<string, string | undefined> = {
    REAPER_CLUSTERS: clusters.map((c) => (c.region ? `${c.name}@${c.region}` : c.name)).join(','),
    REAPER_ROLE_ARNS: clusters.filter((c) => c.roleArn).map((c) => `${c.name}=${c.roleArn}`).join(',') || undefined,
    REAPER_EXTERNAL_ID: s.externalId || undefined,
    // The tag of the IAM condition, so discovery finds exactly the clusters the role may describe.
    REAPER_CLUSTER_TAG: discovery && `${TAG_KEY}=${discovery.tagValue}`,
    REAPER_DISCOVERY_REGIONS: discovery?.regions.join(',') || undefined,
    REAPER_DISCOVERY_ACCOUNTS: discovery?.accounts.join(',') || undefined,
    REAPER_MEMBER_ROLE_NAME: discovery?.accounts.length ? discovery.memberRoleName : undefined,
    REAPER_DRY_RUN: String(props.dryRun ?? false),
    REAPER_SUCCEEDED_JOB_TTL: s.succeededJobTtl,
    REAPER_FAILED_JOB_TTL: s.failedJobTtl,
    REAPER_FARGATE_POD_TTL: s.fargatePodTtl,
    REAPER_BARE_POD_TTL: s.barePodTtl,
    REAPER_ENGINE_POD_GRACE: s.enginePodGrace,
    REAPER_KEEP_LAST_FAILED: s.keepLastFailed?.toString(),
    REAPER_KEEP_LAST_SUCCEEDED: s.keepLastSucceeded?.toString(),
    REAPER_KEEP_LAST_LABEL: s.keepLastLabel,
    REAPER_NAMESPACES: s.namespaces?.join(','),
    REAPER_EXCLUDE_NAMESPACES: s.excludeNamespaces?.join(','),
    REAPER_LABEL_SELECTOR: s.labelSelector,
    REAPER_PRUNE_OWNERS: s.pruneOwners?.join(','),
    REAPER_RESPECT_NATIVE_TTL: s.respectNativeTtl?.toString(),
    REAPER_SKIP_CRONJOB_JOBS: s.skipCronJobJobs?.toString(),
    REAPER_NAMESPACE_ANNOTATIONS: s.namespaceAnnotations?.toString(),
    REAPER_NAMESPACE_EVENTS: s.namespaceEvents?.toString(),
    REAPER_CONCURRENCY: s.concurrency?.toString(),
    REAPER_DRAIN_LATENCY_TARGET: s.drainLatencyTarget,
    REAPER_CLUSTER_CONCURRENCY: s.clusterConcurrency?.toString(),
    REAPER_PAGE_SIZE: s.pageSize?.toString(),
    REAPER_DEADLINE_MARGIN: s.deadlineMargin,
    REAPER_EXTRA_SUBNETS: s.extraSubnets?.join(','),
    REAPER_LOW_HEADROOM_FRACTION: s.lowHeadroomFraction?.toString(),
    REAPER_LOW_HEADROOM_FARGATE_TTL: s.lowHeadroomFargateTtl,
    REAPER_FORECAST_WINDOW: s.forecastWindow,
    REAPER_METRICS_SINK: sink,
    REAPER_METRICS_NAMESPACE: namespace,
    REAPER_METRICS_PER_NAMESPACE: s.metricsPerNamespace?.toString(),
    REAPER_METRICS_DETAIL: detail,
    REAPER_STUCK_AFTER: s.stuckAfter,
  };
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
}
