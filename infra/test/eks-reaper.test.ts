import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EksReaper, EksReaperProps, ReaperAlarmThresholds } from '../lib/eks-reaper';

// A stand-in for the cargo lambda zip: the tests check the template, not the binary, and
// must not start a Rust build.
const FAKE_CODE = path.join(__dirname, 'fixtures', 'lambda');
const ACCOUNT = '111122223333';
const REGION = 'eu-west-1';
const REMOTE_ROLE = 'arn:aws:iam::444455556666:role/eks-reaper-remote';

function synth(props: Partial<EksReaperProps> = {}, app = new App()): { template: Template; stack: Stack; reaper: EksReaper } {
  const stack = new Stack(app, 'Test', { env: { account: ACCOUNT, region: REGION } });
  const reaper = new EksReaper(stack, 'Reaper', {
    clusters: ['batch-prod', 'etl_dev'],
    code: lambda.Code.fromAsset(FAKE_CODE),
    alarmNotifications: 'none',
    ...props,
  });
  return { template: Template.fromStack(stack), stack, reaper };
}

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, string>> };

/** Every statement of every policy attached to the function's role. */
function roleStatements(template: Template): Statement[] {
  const roles = template.findResources('AWS::IAM::Role', {
    Properties: { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })] } },
  });
  expect(Object.keys(roles)).toHaveLength(1);
  const roleId = Object.keys(roles)[0];
  const inline = (roles[roleId].Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement);
  const attached = Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap((p: any) => p.Properties.PolicyDocument.Statement);
  return [...inline, ...attached];
}

const actions = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const allActions = (t: Template): string[] => roleStatements(t).flatMap(actions).sort();

/** Resolves a CDK Fn::Join of literals and pseudo-parameters to a readable string. */
function flat(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(flat).join(',');
  const o = v as Record<string, any>;
  if (o['Fn::Join']) return o['Fn::Join'][1].map(flat).join(o['Fn::Join'][0]);
  if (o.Ref) return `\${${o.Ref}}`;
  if (o['Fn::GetAtt']) return `\${${o['Fn::GetAtt'].join('.')}}`;
  return JSON.stringify(o);
}

describe('IAM: least privilege', () => {
  test('no wildcard actions and no managed policies on the function role', () => {
    const { template } = synth();
    for (const a of allActions(template)) {
      expect(a).not.toContain('*');
    }
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })] },
      ManagedPolicyArns: Match.absent(),
    });
  });

  test('the role holds exactly the actions a run needs', () => {
    const { template } = synth();
    expect([...new Set(allActions(template))]).toEqual([
      'cloudwatch:PutMetricData',
      'ec2:DescribeSubnets',
      'eks:DescribeCluster',
      'eks:DescribeFargateProfile',
      'eks:ListFargateProfiles',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
    ]);
  });

  test('only actions without resource-level permissions get Resource "*"', () => {
    const { template } = synth();
    const star = roleStatements(template).filter((s) => s.Resource === '*').flatMap(actions).sort();
    expect(star).toEqual(['cloudwatch:PutMetricData', 'ec2:DescribeSubnets']);
  });

  test('PutMetricData is limited to the metrics namespace', () => {
    const { template } = synth({ metricsNamespace: 'Team/Reaper' });
    const s = roleStatements(template).find((x) => actions(x).includes('cloudwatch:PutMetricData'));
    expect(s?.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': 'Team/Reaper' } });
  });

  test('EKS actions are scoped to the named clusters and their Fargate profiles', () => {
    const { template } = synth();
    const eks = roleStatements(template).filter((s) => actions(s).some((a) => a.startsWith('eks:')));
    const scoped = eks.map((s) => [actions(s).sort().join('+'), flat(s.Resource)]).sort();
    const arn = `arn:\${AWS::Partition}:eks:${REGION}:${ACCOUNT}`;
    expect(scoped).toEqual([
      ['eks:DescribeCluster+eks:ListFargateProfiles', `${arn}:cluster/batch-prod`],
      ['eks:DescribeCluster+eks:ListFargateProfiles', `${arn}:cluster/etl_dev`],
      ['eks:DescribeFargateProfile', `${arn}:fargateprofile/batch-prod/*`],
      ['eks:DescribeFargateProfile', `${arn}:fargateprofile/etl_dev/*`],
    ].sort());
  });

  test('with the emf sink there is no PutMetricData at all', () => {
    const { template } = synth({ metricsSink: 'emf' });
    expect(allActions(template)).not.toContain('cloudwatch:PutMetricData');
  });

  test('sts:AssumeRole only on the given role ARNs, and no local EKS grant or access entry for that cluster', () => {
    const { template } = synth({ clusters: ['batch-prod', { name: 'remote', roleArn: REMOTE_ROLE }] });
    const assume = roleStatements(template).filter((s) => actions(s).includes('sts:AssumeRole'));
    expect(assume).toHaveLength(1);
    expect(assume[0].Resource).toEqual(REMOTE_ROLE);
    const eksResources = roleStatements(template)
      .filter((s) => actions(s).some((a) => a.startsWith('eks:'))).map((s) => flat(s.Resource));
    expect(eksResources.some((r) => r.includes('remote'))).toBe(false);
    template.resourceCountIs('AWS::EKS::AccessEntry', 1);
  });

  test('no sts:AssumeRole without cross-account clusters', () => {
    expect(allActions(synth().template)).not.toContain('sts:AssumeRole');
  });

  test('VPC ENI permissions only when the function is in a VPC', () => {
    expect(allActions(synth().template)).not.toContain('ec2:CreateNetworkInterface');
    const app = new App();
    const stack = new Stack(app, 'Net', { env: { account: ACCOUNT, region: REGION } });
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'fn', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    new EksReaper(stack, 'Reaper', { clusters: ['c'], code: lambda.Code.fromAsset(FAKE_CODE), vpc: { vpc }, alarmNotifications: 'none' });
    const t = Template.fromStack(stack);
    expect(allActions(t)).toEqual(expect.arrayContaining(['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface']));
    // Only the Describe* actions on "*"; creation limited to the function's subnets and security group.
    const star = roleStatements(t).filter((st: any) => st.Resource === '*').flatMap((st: any) => [st.Action].flat());
    expect(star.filter((a: string) => a.includes('NetworkInterface'))).toEqual(['ec2:DescribeNetworkInterfaces']);
    const create = roleStatements(t).find((st: any) => st.Sid === 'CreateEnisInOwnSubnets')!;
    const resources = (create.Resource as any[]).map((r) => flat(r));
    const subnetIds = vpc.isolatedSubnets.map((sn) => stack.resolve(sn.subnetId).Ref);
    expect(resources.filter((r) => r.includes(':subnet/'))).toEqual(subnetIds.map((id) => expect.stringContaining(`:subnet/\${${id}}`)));
    expect(resources.filter((r) => r.includes(':security-group/'))).toHaveLength(1);
    expect(resources.filter((r) => r.endsWith(':network-interface/*'))).toHaveLength(1);
    expect(resources).toHaveLength(subnetIds.length + 2);
    const manage = roleStatements(t).find((st: any) => st.Sid === 'ManageOwnEnis')!;
    expect(flat(manage.Resource)).toMatch(/:network-interface\/\*$/);
    t.hasResourceProperties('AWS::Lambda::Function', { VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue() }) });
  });
});

describe('cluster discovery', () => {
  const eksStatements = (t: Template) => roleStatements(t)
    .filter((s) => actions(s).some((a) => a.startsWith('eks:')))
    .map((s) => [actions(s).sort().join('+'), flat(s.Resource), JSON.stringify(s.Condition ?? null)])
    .sort();

  test('off by default: no eks:ListClusters and no discovery variables', () => {
    const { template } = synth();
    expect(allActions(template)).not.toContain('eks:ListClusters');
    const env = (Object.values(template.findResources('AWS::Lambda::Function'))[0] as any).Properties.Environment.Variables;
    expect(env.REAPER_CLUSTER_TAG).toBeUndefined();
    expect(env.REAPER_DISCOVERY_REGIONS).toBeUndefined();
  });

  test('in the stack region: ListClusters on "*" in that region, tagged clusters of that region', () => {
    const { template } = synth({ clusters: [], discovery: {} });
    const arn = `arn:\${AWS::Partition}:eks:${REGION}:${ACCOUNT}`;
    expect(eksStatements(template)).toEqual([
      ['eks:DescribeCluster+eks:ListFargateProfiles', `${arn}:cluster/*`,
        JSON.stringify({ StringEquals: { 'aws:ResourceTag/eks-reaper': 'enabled' } })],
      ['eks:DescribeFargateProfile', `${arn}:fargateprofile/*`, 'null'],
      ['eks:ListClusters', '*', JSON.stringify({ StringEquals: { 'aws:RequestedRegion': REGION } })],
    ].sort());
    const star = roleStatements(template).filter((s) => s.Resource === '*').flatMap(actions).sort();
    expect(star).toEqual(['cloudwatch:PutMetricData', 'ec2:DescribeSubnets', 'eks:ListClusters']);
  });

  test('with regions: any region of the ARN, exactly those requested regions', () => {
    const regions = ['eu-west-1', 'us-east-1'];
    const { template } = synth({ clusters: [], discovery: { regions, tagValue: 'fleet-a' } });
    const arn = `arn:\${AWS::Partition}:eks:*:${ACCOUNT}`;
    const inRegions = { 'aws:RequestedRegion': regions };
    expect(eksStatements(template)).toEqual([
      ['eks:DescribeCluster+eks:ListFargateProfiles', `${arn}:cluster/*`,
        JSON.stringify({ StringEquals: { 'aws:ResourceTag/eks-reaper': 'fleet-a', ...inRegions } })],
      ['eks:DescribeFargateProfile', `${arn}:fargateprofile/*`, JSON.stringify({ StringEquals: inRegions })],
      ['eks:ListClusters', '*', JSON.stringify({ StringEquals: inRegions })],
    ].sort());
  });

  test('the function looks for the tag its IAM condition names, in the given regions', () => {
    const { template } = synth({ clusters: ['batch-prod'], discovery: { tagValue: 'fleet-a', regions: ['eu-west-1'] } });
    const env = (Object.values(template.findResources('AWS::Lambda::Function'))[0] as any).Properties.Environment.Variables;
    expect(env).toMatchObject({
      REAPER_CLUSTERS: 'batch-prod', REAPER_CLUSTER_TAG: 'eks-reaper=fleet-a', REAPER_DISCOVERY_REGIONS: 'eu-west-1',
    });
    const tagged = roleStatements(template).find((s) => s.Sid === 'DescribeTaggedClusters');
    expect(tagged?.Condition?.StringEquals['aws:ResourceTag/eks-reaper']).toBe('fleet-a');
    // The named cluster keeps its own ARN-scoped grant and access entry.
    template.resourceCountIs('AWS::EKS::AccessEntry', 1);
    expect(eksStatements(template).map((s) => s[1])).toContain(`arn:\${AWS::Partition}:eks:${REGION}:${ACCOUNT}:cluster/batch-prod`);
  });

  test('discovery only: no clusters in the schedule input, no access entries', () => {
    const { template } = synth({ clusters: [], discovery: {}, dryRun: 'server' });
    const s = Object.values(template.findResources('AWS::Scheduler::Schedule'))[0] as any;
    expect(JSON.parse(s.Properties.Target.Input)).toEqual({ dryRun: 'server' });
    template.resourceCountIs('AWS::EKS::AccessEntry', 0);
    const env = (Object.values(template.findResources('AWS::Lambda::Function'))[0] as any).Properties.Environment.Variables;
    expect(env.REAPER_CLUSTERS).toBe('');
    expect(env.REAPER_DISCOVERY_REGIONS).toBeUndefined();
  });

  test('other accounts: their ids to the function, sts:AssumeRole on exactly their member roles', () => {
    const accounts = ['111111111111', '222222222222'];
    const { template } = synth({ clusters: [], discovery: { accounts } });
    const env = (Object.values(template.findResources('AWS::Lambda::Function'))[0] as any).Properties.Environment.Variables;
    expect(env).toMatchObject({
      REAPER_DISCOVERY_ACCOUNTS: '111111111111,222222222222', REAPER_MEMBER_ROLE_NAME: 'eks-reaper-member',
    });
    const assume = roleStatements(template).find((s) => s.Sid === 'AssumeMemberRoles');
    expect(actions(assume!)).toEqual(['sts:AssumeRole']);
    expect(JSON.stringify(assume!.Resource)).toBe(JSON.stringify(accounts.map((a) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${a}:role/eks-reaper-member`]],
    }))));
    const none = synth({ clusters: [], discovery: {} }).template;
    expect(roleStatements(none).find((s) => s.Sid === 'AssumeMemberRoles')).toBeUndefined();
    expect(() => synth({ discovery: { accounts: ['1234'] } })).toThrow(/discovery.accounts/);
    expect(() => synth({ discovery: { memberRoleName: 'a role' } })).toThrow(/discovery.memberRoleName/);
  });

  test('rejects a bad tag value or region at synth', () => {
    expect(() => synth({ discovery: { tagValue: '' } })).toThrow(/discovery.tagValue/);
    expect(() => synth({ discovery: { tagValue: 'a"b' } })).toThrow(/discovery.tagValue/);
    expect(() => synth({ discovery: { regions: ['EU'] } })).toThrow(/discovery.regions/);
    expect(() => synth({ discovery: { regions: ['*'] } })).toThrow(/discovery.regions/);
  });
});

describe('function', () => {
  test('arm64 provided.al2023 bootstrap, 1024 MB, 900 s, reserved concurrency 1, JSON logs', () => {
    const { template } = synth();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Architectures: ['arm64'],
      Handler: 'bootstrap',
      MemorySize: 1024,
      Timeout: 900,
      ReservedConcurrentExecutions: 1,
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON', ApplicationLogLevel: 'INFO' }),
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    // The logs are the record of what was deleted: they outlive the stack.
    template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    // An overlapping (throttled) run is dropped after one interval, not queued for hours.
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumEventAgeInSeconds: 300, MaximumRetryAttempts: 0 });
  });

  test('settings become REAPER_* variables; unset ones are left to the binary defaults', () => {
    const { template } = synth({
      clusters: ['batch-prod', { name: 'eu', region: 'eu-central-1' }, { name: 'remote', roleArn: REMOTE_ROLE }],
      dryRun: 'server',
      settings: {
        fargatePodTtl: '5m', excludeNamespaces: ['kube-system', 'ops'], lowHeadroomFraction: 0.2, externalId: 'org-7f3a',
        stuckAfter: '30m',
        namespaceAnnotations: false, namespaceEvents: true,
      },
    });
    const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as any;
    const env = fn.Properties.Environment.Variables;
    expect(env).toMatchObject({
      REAPER_CLUSTERS: 'batch-prod,eu@eu-central-1,remote',
      REAPER_ROLE_ARNS: `remote=${REMOTE_ROLE}`,
      REAPER_EXTERNAL_ID: 'org-7f3a',
      REAPER_DRY_RUN: 'server',
      REAPER_FARGATE_POD_TTL: '5m',
      REAPER_EXCLUDE_NAMESPACES: 'kube-system,ops',
      REAPER_LOW_HEADROOM_FRACTION: '0.2',
      REAPER_STUCK_AFTER: '30m',
      REAPER_NAMESPACE_ANNOTATIONS: 'false',
      REAPER_NAMESPACE_EVENTS: 'true',
      REAPER_METRICS_SINK: 'cloudwatch',
      REAPER_METRICS_NAMESPACE: 'EKSReaper',
      REAPER_METRICS_DETAIL: 'essential',
    });
    expect(env.REAPER_SUCCEEDED_JOB_TTL).toBeUndefined();
    expect(Object.keys(env).filter((k) => !k.startsWith('REAPER_'))).toEqual([]);
  });

  test('without prebuilt code it is a cargo-lambda RustFunction, and tests need no cargo build', () => {
    // Stacks outside aws:cdk:bundling-stacks are not bundled: the RustFunction wiring is
    // synthesized without running cargo lambda.
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Rust', { env: { account: ACCOUNT, region: REGION } });
    new EksReaper(stack, 'Reaper', { clusters: ['c'], alarmNotifications: 'none' });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023', Architectures: ['arm64'], Handler: 'bootstrap', ReservedConcurrentExecutions: 1,
    });
  });

  test('rejects an empty cluster list, a system: group and an empty namespace list', () => {
    expect(() => synth({ clusters: [] })).toThrow(/at least one cluster, or set discovery/);
    expect(() => synth({ kubernetesGroup: 'system:masters' })).toThrow(/system:/);
    expect(() => synth({ settings: { namespaces: [] } })).toThrow(/settings.namespaces is empty/);
    expect(() => synth({ settings: { namespaces: [' '] } })).toThrow(/settings.namespaces is empty/);
  });
});

describe('schedule', () => {
  test('EventBridge Scheduler sends {clusters, dryRun} every interval, no retries by default', () => {
    const { template } = synth({
      clusters: ['batch-prod', { name: 'remote', region: 'us-west-2', roleArn: REMOTE_ROLE }],
      interval: Duration.minutes(10),
    });
    const s = Object.values(template.findResources('AWS::Scheduler::Schedule'))[0] as any;
    expect(s.Properties.ScheduleExpression).toBe('rate(10 minutes)');
    expect(s.Properties.State).toBe('ENABLED');
    expect(JSON.parse(s.Properties.Target.Input)).toEqual({
      clusters: ['batch-prod', { name: 'remote', region: 'us-west-2', roleArn: REMOTE_ROLE }],
      dryRun: false,
    });
    expect(s.Properties.Target.RetryPolicy).toEqual({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 600 });
    expect(s.Properties.Target.DeadLetterConfig).toBeUndefined();
  });

  test('dry run and an optional dead-letter queue', () => {
    const { template } = synth({ dryRun: true, deadLetterQueue: true });
    const s = Object.values(template.findResources('AWS::Scheduler::Schedule'))[0] as any;
    expect(JSON.parse(s.Properties.Target.Input).dryRun).toBe(true);
    expect(s.Properties.Target.DeadLetterConfig.Arn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/DeadLetterQueue/), 'Arn'] });
    template.resourceCountIs('AWS::SQS::Queue', 1);
  });

  test('the queue is also the on-failure destination of the function', () => {
    const { template } = synth({ deadLetterQueue: true });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 0,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('DeadLetterQueue'), 'Arn'] } } },
    });
    const { template: without } = synth({});
    const config = Object.values(without.findResources('AWS::Lambda::EventInvokeConfig'))[0] as any;
    expect(config.Properties.DestinationConfig).toBeUndefined();
  });
});

describe('emergency runs', () => {
  const rules = (template: Template) => Object.values(template.findResources('AWS::Events::Rule')) as any[];

  test('a contributor of a free-IP or forecast alarm going to ALARM invokes the function', () => {
    const { template } = synth({ deadLetterQueue: true });
    const [rule] = rules(template);
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.cloudwatch'],
      'detail-type': ['CloudWatch Alarm Contributor State Change'],
      detail: {
        alarmName: [
          { Ref: expect.stringMatching(/SubnetFreePercentLow/) },
          { Ref: expect.stringMatching(/IpForecast/) },
        ],
        state: { value: ['ALARM'] },
      },
    });
    const [target] = rule.Properties.Targets;
    expect(target.Arn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/Function/), 'Arn'] });
    expect(target.RetryPolicy).toEqual({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 });
    expect(target.DeadLetterConfig.Arn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/DeadLetterQueue/), 'Arn'] });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('EmergencyRule'), 'Arn'] },
    });
  });

  test('absolute IP alarms trigger it too', () => {
    const { template } = synth({ metricsDetail: 'full', thresholds: { absoluteIpAlarms: true } });
    const names = rules(template)[0].Properties.EventPattern.detail.alarmName.map((n: any) => n.Ref);
    expect(names).toHaveLength(4);
    expect(names.join(' ')).toMatch(/ClusterIpsLow.*SubnetIpsLow/);
  });

  test('off on request, and without metrics (no alarms to follow)', () => {
    expect(rules(synth({ emergencyRuns: false }).template)).toHaveLength(0);
    expect(rules(synth({ metricsSink: 'none' }).template)).toHaveLength(0);
  });
});

describe('EKS access entries', () => {
  test('one STANDARD entry per cluster for the function role, group eks-reaper, no access policy', () => {
    const { template } = synth();
    template.resourceCountIs('AWS::EKS::AccessEntry', 2);
    for (const name of ['batch-prod', 'etl_dev']) {
      template.hasResourceProperties('AWS::EKS::AccessEntry', {
        ClusterName: name,
        Type: 'STANDARD',
        KubernetesGroups: ['eks-reaper'],
        PrincipalArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ReaperRole'), 'Arn'] },
        AccessPolicies: Match.absent(),
      });
    }
  });

  test('none when disabled; a warning for clusters in another region', () => {
    synth({ createAccessEntries: false }).template.resourceCountIs('AWS::EKS::AccessEntry', 0);
    const { template, stack } = synth({ clusters: [{ name: 'far', region: 'ap-south-1' }] });
    template.resourceCountIs('AWS::EKS::AccessEntry', 0);
    Annotations.fromStack(stack).hasWarning('*', Match.stringLikeRegexp('No access entry for far'));
  });
});

describe('alarms', () => {
  const topicArn = `arn:aws:sns:${REGION}:${ACCOUNT}:oncall`;
  const withTopic = () => {
    const app = new App();
    const stack = new Stack(app, 'Alarmed', { env: { account: ACCOUNT, region: REGION } });
    const topic = sns.Topic.fromTopicArn(stack, 'Topic', topicArn);
    new EksReaper(stack, 'Reaper', { clusters: ['batch-prod'], code: lambda.Code.fromAsset(FAKE_CODE), alarmTopic: topic });
    return Template.fromStack(stack);
  };
  const alarmNames = (t: Template): string[] => (Object.values(t.findResources('AWS::CloudWatch::Alarm')) as any[])
    .map((a) => flat(a.Properties.AlarmName)).sort();
  // Grouped queries list the worst clusters first, at most 500 (ASC for a low-value alarm).
  const query = (fn: string, name: string, worst = 'ASC') =>
    `SELECT ${fn}(${name}) FROM SCHEMA("EKSReaper", Account, ClusterName, Region) GROUP BY Account, Region, ClusterName ORDER BY ${fn}() ${worst} LIMIT 500`;
  const byQuery = (t: Template, q: string) => (Object.values(t.findResources('AWS::CloudWatch::Alarm')) as any[])
    .filter((a) => a.Properties.Metrics?.[0]?.Expression === q).map((a) => a.Properties);

  test('fleet-wide, the same whatever the cluster list, named as in template.yaml', () => {
    const expected = ['api-throttled', 'backlog-not-draining', 'delete-errors', 'duration-near-timeout', 'function-errors',
      'function-throttles', 'heartbeat-missing', 'ip-exhaustion-forecast', 'objects-stuck-terminating', 'reports-missing',
      'schedule-invocations-dropped', 'schedule-target-errors', 'subnet-free-percent-low', 'subnets-unread'].map((n) => `\${AWS::StackName}-${n}`);
    expect(alarmNames(synth().template)).toEqual(expected);
    expect(alarmNames(synth({ clusters: ['a', 'b', 'c', 'd'] }).template)).toEqual(expected);
  });

  test('heartbeat: per cluster (GROUP BY), RunSucceeded absent or 0 for 4 runs is breaching', () => {
    const [a] = byQuery(withTopic(), query('SUM', 'RunSucceeded'));
    expect(a).toMatchObject({
      Metrics: [{ Period: 300, ReturnData: true }],
      EvaluationPeriods: 4, DatapointsToAlarm: 4, Threshold: 1,
      ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching',
      AlarmActions: [topicArn], OKActions: [topicArn],
    });
  });

  test('a reaper that publishes nothing at all is caught by an ungrouped query', () => {
    const [a] = byQuery(synth().template, 'SELECT COUNT(RunSucceeded) FROM SCHEMA("EKSReaper", Account, ClusterName, Region)');
    expect(a).toMatchObject({ Threshold: 1, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching', EvaluationPeriods: 4 });
  });

  test('subnets not read (SubnetsRead 0 or missing) alarms per cluster, missing data breaching', () => {
    const [a] = byQuery(synth().template, query('MIN', 'SubnetsRead'));
    expect(a).toMatchObject({ Threshold: 1, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching', EvaluationPeriods: 2 });
  });

  test('default IP alarm is the free share of the tightest subnet; absolute counts only on request', () => {
    const { template } = synth({ thresholds: { subnetFreePercent: 15 } });
    const [a] = byQuery(template, query('MIN', 'MinSubnetFreePercent'));
    expect(a).toMatchObject({ Threshold: 15, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'notBreaching' });
    expect(JSON.stringify(template.toJSON())).not.toContain('ClusterAvailableIps)');
    const abs = synth({ metricsDetail: 'full', thresholds: { absoluteIpAlarms: true, clusterAvailableIps: 800 } }).template;
    expect(byQuery(abs, query('MIN', 'ClusterAvailableIps'))[0]).toMatchObject({ Threshold: 800 });
    // The fullest subnet per cluster: one series per cluster, whatever its subnets.
    expect(byQuery(abs, query('MIN', 'MinSubnetAvailableIps'))[0]).toMatchObject({ Threshold: 100 });
  });

  test('no alarm query returns a series per subnet, nor more than 500, worst first (PARTIAL_DATA beyond, CloudWatch)', () => {
    const { template } = synth({ metricsDetail: 'full', thresholds: { absoluteIpAlarms: true } });
    const alarms = (Object.values(template.findResources('AWS::CloudWatch::Alarm')) as any[])
      .filter((a) => a.Properties.Metrics?.[0]?.Expression);
    expect(alarms).toHaveLength(11);
    for (const a of alarms) {
      const q: string = a.Properties.Metrics[0].Expression;
      expect(q).not.toMatch(/SubnetId|AvailabilityZone/);
      const m = q.match(/^SELECT (\w+)\(\w+\) FROM SCHEMA\("EKSReaper", Account, ClusterName, Region\)(?: GROUP BY Account, Region, ClusterName ORDER BY (\w+)\(\) (ASC|DESC) LIMIT 500)?$/);
      expect(m).not.toBeNull();
      if (m![2]) {
        expect(m![2]).toBe(m![1]);
        expect(m![3]).toBe(a.Properties.ComparisonOperator.startsWith('LessThan') ? 'ASC' : 'DESC');
      }
    }
  });

  test('forecast under its threshold at 2 runs; backlog above 0 at N runs', () => {
    const { template } = synth({ thresholds: { forecastHours: 4, backlogRuns: 5 } });
    expect(byQuery(template, query('MIN', 'IpExhaustionHours'))[0]).toMatchObject({ Threshold: 4, EvaluationPeriods: 2, DatapointsToAlarm: 2 });
    expect(byQuery(template, query('MIN', 'Backlog', 'DESC'))[0]).toMatchObject({
      Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 5, DatapointsToAlarm: 5,
    });
  });

  test('objects stuck terminating: above 0 at one run, per cluster, pointing at the runbook', () => {
    const [a] = byQuery(synth().template, query('MAX', 'StuckObjects', 'DESC'));
    expect(a).toMatchObject({
      Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 1, TreatMissingData: 'notBreaching',
    });
    expect(a.AlarmDescription).toContain('longer than 10m');
    expect(a.AlarmDescription).toContain('docs/runbook.md#stuck-objects');
    const custom = byQuery(synth({ settings: { stuckAfter: '1h' } }).template, query('MAX', 'StuckObjects', 'DESC'))[0];
    expect(custom.AlarmDescription).toContain('longer than 1h');
  });

  test('function errors on AWS/Lambda Errors', () => {
    synth().template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda', MetricName: 'Errors', Statistic: 'Sum', Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  test('every alarm notifies the topic; an e-mail creates one', () => {
    const t = withTopic();
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')) as any[];
    expect(alarms).toHaveLength(14);
    for (const a of alarms) expect(a.Properties.AlarmActions).toEqual([topicArn]);
    const { template } = synth({ alarmEmail: 'oncall@example.com', alarmNotifications: undefined });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
  });

  test('refuses to synthesize alarms that notify nobody unless told so', () => {
    expect(() => synth({ alarmNotifications: undefined })).toThrow(/notify nobody/);
    expect(() => synth({ alarmNotifications: 'required' })).toThrow(/notify nobody/);
    expect(synth({ alarmNotifications: 'none' }).template.toJSON().Resources).toBeDefined();
  });

  test('heartbeat window must exceed the function timeout', () => {
    // 3 x 300 s = 900 s: a single 15-minute run would look like three missed runs.
    expect(() => synth({ thresholds: { heartbeatMissedRuns: 3 } })).toThrow(/must exceed the function timeout/);
    expect(() => synth({ interval: Duration.minutes(1), timeout: Duration.seconds(120), thresholds: { heartbeatMissedRuns: 2 } }))
      .toThrow(/2 x 60 s/);
    synth({ interval: Duration.minutes(1), timeout: Duration.seconds(120), thresholds: { heartbeatMissedRuns: 3 } });
    synth({ thresholds: { heartbeatMissedRuns: 4 } });
  });

  test('metrics sink none: no alarms on the reaper\'s metrics (they would all fire), the AWS-metric ones stay', () => {
    const { template } = synth({ metricsSink: 'none' });
    expect(alarmNames(template)).toEqual(['duration-near-timeout', 'function-errors', 'function-throttles',
      'schedule-invocations-dropped', 'schedule-target-errors'].map((n) => `\${AWS::StackName}-${n}`));
  });

  test('delete errors and API throttling above 0 at N consecutive runs, per cluster', () => {
    const { template } = synth();
    for (const name of ['DeleteErrors', 'Throttled']) {
      expect(byQuery(template, query('SUM', name, 'DESC'))[0]).toMatchObject({
        Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 3, DatapointsToAlarm: 3,
        TreatMissingData: 'notBreaching',
      });
    }
    const custom = synth({ thresholds: { deleteErrorRuns: 2, throttledRuns: 6 } }).template;
    expect(byQuery(custom, query('SUM', 'DeleteErrors', 'DESC'))[0]).toMatchObject({ EvaluationPeriods: 2, DatapointsToAlarm: 2 });
    expect(byQuery(custom, query('SUM', 'Throttled', 'DESC'))[0]).toMatchObject({ EvaluationPeriods: 6, DatapointsToAlarm: 6 });
  });

  test('Lambda throttles above 0; maximum duration above 80 % of the timeout', () => {
    const { template } = synth();
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda', MetricName: 'Throttles', Statistic: 'Sum', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda', MetricName: 'Duration', Statistic: 'Maximum', Threshold: 720000, ComparisonOperator: 'GreaterThanThreshold',
    });
    synth({ timeout: Duration.seconds(300), thresholds: { heartbeatMissedRuns: 2 } }).template
      .hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Duration', Threshold: 240000 });
  });

  test('scheduler target errors and dropped invocations of the default schedule group', () => {
    const { template } = synth();
    for (const metric of ['TargetErrorCount', 'InvocationDroppedCount']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Scheduler', MetricName: metric, Dimensions: [{ Name: 'ScheduleGroup', Value: 'default' }],
        Statistic: 'Sum', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
      });
    }
  });

  test('messages in the schedule\'s dead-letter queue, only when there is one', () => {
    expect(alarmNames(synth().template)).not.toContain('${AWS::StackName}-schedule-dlq-not-empty');
    const { template } = synth({ deadLetterQueue: true });
    const [queue] = Object.keys(template.findResources('AWS::SQS::Queue'));
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: Match.anyValue(), Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Statistic: 'Maximum',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }], Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });
});

describe('dashboard', () => {
  test('free IPs per subnet, forecast, deletions, terminated pods, backlog, throttles and errors', () => {
    const { template } = synth({ metricsDetail: 'full' });
    const d = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0] as any;
    const body = JSON.parse(flat(d.Properties.DashboardBody));
    const titles = body.widgets.map((w: any) => w.properties.title);
    expect(titles).toEqual(expect.arrayContaining([
      'Free IPs per subnet',
      'IP exhaustion forecast (hours)',
      'Deletions per run',
      'Terminated pods and Fargate pods holding IPs',
      'Backlog (due but not yet deleted) and finished Jobs',
      'Throttles and errors',
      'Free share of the tightest subnet (%)',
    ]));
    const text = JSON.stringify(body);
    for (const q of [
      'SELECT MIN(SubnetAvailableIps) FROM SCHEMA(\\"EKSReaper\\", Account, AvailabilityZone, ClusterName, Region, SubnetId) GROUP BY Account, Region, ClusterName, AvailabilityZone, SubnetId',
      'SELECT SUM(JobsDeleted) FROM SCHEMA(\\"EKSReaper\\", Account, ClusterName, Region) GROUP BY Account, Region, ClusterName',
      'SELECT MAX(Backlog)', 'SELECT SUM(Throttled)', 'SELECT MIN(SubnetsRead)', 'SELECT MIN(MinSubnetFreePercent)', 'SELECT SUM(DeleteErrors)', 'SELECT MAX(TerminatedPods)', 'SELECT MIN(IpExhaustionHours)',
    ]) {
      expect(text).toContain(q);
    }
  });
});

/** The dashboard's titles and every Metrics Insights query it runs. */
function dashboard(template: Template): { titles: string[]; queries: string[] } {
  const d = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0] as any;
  const body = JSON.parse(flat(d.Properties.DashboardBody));
  const queries = body.widgets.flatMap((w: any) => w.properties.metrics
    .filter((m: any) => typeof m[0] === 'object' && m[0].expression)
    .map((m: any) => m[0].expression as string));
  return { titles: body.widgets.map((w: any) => w.properties.title), queries };
}

/** The metric names the stack's alarms and dashboard read from the reaper's namespace. */
function metricsRead(template: Template): string[] {
  const text = JSON.stringify(template.toJSON());
  return [...new Set([...text.matchAll(/SELECT [A-Z]+\((\w+)\) FROM SCHEMA/g)].map((m) => m[1]))].sort();
}

// src/metrics/detail.rs ESSENTIAL: what REAPER_METRICS_DETAIL=essential publishes.
const ESSENTIAL = ['Backlog', 'DeleteErrors', 'IpExhaustionHours', 'MinSubnetFreePercent',
  'ObjectsDeleted', 'RunSucceeded', 'StuckObjects', 'SubnetsRead', 'Throttled'];
// src/metrics/detail.rs SENT_WHEN_NON_ZERO: essential leaves these out while they are 0.
const SENT_WHEN_NON_ZERO = ['Backlog', 'DeleteErrors', 'StuckObjects', 'Throttled'];

describe('metrics detail', () => {
  test('essential by default: the function is told so, and every alarm and widget reads an essential metric', () => {
    const { template } = synth();
    const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as any;
    expect(fn.Properties.Environment.Variables.REAPER_METRICS_DETAIL).toBe('essential');
    expect(metricsRead(template)).toEqual(ESSENTIAL);
  });

  test('essential leaves out the widgets and lines of metrics it does not publish', () => {
    const { titles, queries } = dashboard(synth().template);
    expect(titles).not.toContain('Free IPs per subnet');
    expect(titles).not.toContain('Terminated pods and Fargate pods holding IPs');
    expect(titles).toEqual(expect.arrayContaining([
      'IP exhaustion forecast (hours)', 'Deletions per run', 'Backlog (due but not yet deleted)',
      'Throttles and errors', 'Heartbeat (successful runs) and subnets read', 'Run duration (ms)',
      'Free share of the tightest subnet (%)', 'Objects stuck terminating',
    ]));
    expect(titles).toHaveLength(8);
    for (const gone of ['FargatePodsDeleted', 'FinishedJobs', 'LowHeadroomMode', 'RunDuration', 'SubnetAvailableIps',
      'StuckFargatePods']) {
      expect(queries.join('\n')).not.toContain(`(${gone})`);
    }
  });

  test('full publishes and shows every metric, the per-subnet ones included', () => {
    const { template } = synth({ metricsDetail: 'full' });
    const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as any;
    expect(fn.Properties.Environment.Variables.REAPER_METRICS_DETAIL).toBe('full');
    const { titles } = dashboard(template);
    expect(titles).toHaveLength(10);
    expect(titles).toContain('Free IPs per subnet');
    expect(metricsRead(template)).toEqual(expect.arrayContaining(['SubnetAvailableIps', 'RunDuration', 'LowHeadroomMode',
      'StuckFargatePods']));
  });

  test('alarms on the counters essential leaves out at 0 fire above 0 only and read missing data as not breaching', () => {
    for (const detail of ['essential', 'full'] as const) {
      const { template } = synth({ metricsDetail: detail });
      const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as any[];
      for (const name of SENT_WHEN_NON_ZERO) {
        const on = alarms.filter((a) => JSON.stringify(a.Properties.Metrics ?? []).includes(`(${name})`));
        expect(on).toHaveLength(1);
        expect(on[0].Properties).toMatchObject({
          Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching',
        });
      }
      const heartbeat = alarms.filter((a) => JSON.stringify(a.Properties.Metrics ?? []).includes('(RunSucceeded)'));
      expect(heartbeat).toHaveLength(2);
      for (const a of heartbeat) expect(a.Properties.TreatMissingData).toBe('breaching');
    }
  });

  test('deletions: one count (ObjectsDeleted) with essential, the split with full', () => {
    const deletions = (detail: 'essential' | 'full') => dashboard(synth({ metricsDetail: detail }).template).queries
      .filter((q) => /SUM\((Objects|Jobs|Pods|FargatePods)Deleted\)/.test(q));
    expect(deletions('essential')).toEqual([
      'SELECT SUM(ObjectsDeleted) FROM SCHEMA("EKSReaper", Account, ClusterName, Region) GROUP BY Account, Region, ClusterName']);
    expect(deletions('full').map((q) => q.match(/SUM\((\w+)\)/)![1])).toEqual(
      ['JobsDeleted', 'PodsDeleted', 'FargatePodsDeleted']);
  });

  test('absolute IP alarms need full detail: refused at synth with essential', () => {
    expect(() => synth({ thresholds: { absoluteIpAlarms: true } })).toThrow(/absoluteIpAlarms needs metricsDetail: 'full'/);
    expect(() => synth({ metricsDetail: 'full', thresholds: { absoluteIpAlarms: true } })).not.toThrow();
  });
});

describe('fanOut', () => {
  test('creates the FIFO run queue, its dead-letter queue and a mapping of one message per invocation', () => {
    const { template } = synth({ fanOut: true, fanOutParallelism: 40 });
    template.resourceCountIs('AWS::SQS::Queue', 2);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 40 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { FifoQueue: true, VisibilityTimeout: 960 });
    expect(allActions(template)).toEqual(expect.arrayContaining(['sqs:SendMessage', 'sqs:ReceiveMessage']));
  });

  test('refuses a parallelism Lambda would refuse', () => {
    for (const bad of [1, 0, 1001, 2.5]) {
      expect(() => synth({ fanOut: true, fanOutParallelism: bad })).toThrow(/fanOutParallelism/);
    }
  });

  test('is off by default: no queue, one run at a time', () => {
    const { template } = synth();
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 0);
    template.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 1 });
  });
});

/**
 * CloudWatch evaluates an alarm on a Metrics Insights query over the latest 3 hours only and
 * PutMetricAlarm refuses a longer period x evaluation periods ("Limits that apply to alarms
 * based on Metrics Insights queries"). The intervals and run counts enumerated are the ones
 * template.yaml's parameters allow (read from it), so SAM and CDK answer the same question.
 */
describe('Metrics Insights alarm windows: at most 3 hours', () => {
  const LIMIT_S = 3 * 3600;
  const samTemplate = fs.readFileSync(path.join(__dirname, '..', '..', 'template.yaml'), 'utf8');
  /** The text of one parameter's block in template.yaml's Parameters. */
  const samParameter = (name: string): string => {
    const m = samTemplate.match(new RegExp(`\\n  ${name}:\\n((?:    .*\\n|\\s*\\n)+)`));
    if (!m) throw new Error(`no parameter ${name} in template.yaml`);
    return m[1];
  };
  const intervals = samParameter('ScheduleIntervalMinutes').match(/AllowedValues: \[(.*)\]/)![1]
    .split(',').map((v) => Number(v.trim().replace(/"/g, '')));
  const range = (name: string): number[] => {
    const p = samParameter(name);
    const [min, max] = ['MinValue', 'MaxValue'].map((k) => Number(p.match(new RegExp(`${k}: (\\d+)`))![1]));
    return Array.from({ length: max - min + 1 }, (_, i) => min + i);
  };
  // SAM parameter -> CDK prop (thresholds.*)
  const RUN_COUNTS: Record<string, keyof ReaperAlarmThresholds> = {
    HeartbeatMissedRuns: 'heartbeatMissedRuns',
    BacklogRuns: 'backlogRuns',
    DeleteErrorRuns: 'deleteErrorRuns',
    ThrottledRuns: 'throttledRuns',
  };

  /** Builds the construct (no synth: asset staging only) with one run count set, the others at 1. */
  const build = (app: App, n: number, minutes: number, thresholds: Record<string, number>) => {
    const stack = new Stack(app, `W${n}`, { env: { account: ACCOUNT, region: REGION } });
    // A 30 s timeout keeps the heartbeat-vs-timeout check out of the way (tested elsewhere).
    return new EksReaper(stack, 'Reaper', {
      clusters: ['batch-prod'], code: lambda.Code.fromAsset(FAKE_CODE), alarmNotifications: 'none',
      metricsDetail: 'full',
      thresholds: { absoluteIpAlarms: true, ...Object.fromEntries(Object.values(RUN_COUNTS).map((p) => [p, 1])), ...thresholds },
      interval: Duration.minutes(minutes), timeout: Duration.seconds(30),
    });
  };
  /** period x evaluation periods of every Metrics Insights alarm, as the template renders them. */
  const windows = (reaper: EksReaper): Record<string, number> => Object.fromEntries(
    Object.entries(reaper.alarms).flatMap(([key, alarm]) => {
      const cfn = alarm.node.defaultChild as cloudwatch.CfnAlarm;
      const metrics = Stack.of(alarm).resolve(cfn.metrics) as Array<{ expression?: string; period?: number }> | undefined;
      const query = metrics?.find((m) => m.expression?.startsWith('SELECT '));
      return query ? [[key, query.period! * (Stack.of(alarm).resolve(cfn.evaluationPeriods) as number)]] : [];
    }));

  test('the enumeration reads what template.yaml allows', () => {
    expect(intervals).toEqual([1, 2, 5, 10, 15, 30, 60]);
    for (const name of Object.keys(RUN_COUNTS)) expect(range(name)).toEqual(range('HeartbeatMissedRuns'));
  });

  test.each(intervals)('every run count at a %i-minute interval: within 3 hours it synthesizes and fits, beyond it is refused by name', (minutes) => {
    const app = new App();
    let n = 0;
    const wrong: string[] = [];
    for (const [sam, prop] of Object.entries(RUN_COUNTS)) {
      for (const runs of range(sam)) {
        const fits = runs * minutes * 60 <= LIMIT_S;
        let reaper: EksReaper | undefined;
        let error = '';
        try {
          reaper = build(app, n++, minutes, { [prop]: runs });
        } catch (e) {
          error = (e as Error).message;
        }
        if (fits) {
          const w = reaper ? windows(reaper) : {};
          // heartbeat, reports-missing, subnets-unread, free share, forecast, backlog,
          // delete errors, throttled, stuck objects, and the two absolute IP alarms.
          if (!reaper || Object.keys(w).length !== 11 || Object.values(w).some((s) => s > LIMIT_S)) {
            wrong.push(`${prop}=${runs}: ${error || JSON.stringify(w)}`);
          }
        } else {
          const said = new RegExp(`thresholds\\.${prop} x interval \\(${runs} x ${minutes * 60} s = ${runs * minutes * 60} s\\) exceeds 3 hours`
            + `.*${prop} may be at most ${Math.floor(LIMIT_S / (minutes * 60))}$`);
          if (!said.test(error)) wrong.push(`${prop}=${runs} not refused as expected: ${error || 'synthesized'}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  }, 120_000);

  test('the synthesized template at the longest allowed window: 3 runs of an hour', () => {
    const { template } = synth({
      interval: Duration.hours(1), timeout: Duration.seconds(900),
      thresholds: { heartbeatMissedRuns: 3, backlogRuns: 3, deleteErrorRuns: 3, throttledRuns: 3 },
    });
    const alarms = (Object.values(template.findResources('AWS::CloudWatch::Alarm')) as any[])
      .filter((a) => a.Properties.Metrics?.some((m: any) => m.Expression));
    expect(alarms).toHaveLength(9);
    for (const a of alarms) {
      expect(a.Properties.Metrics[0].Period * a.Properties.EvaluationPeriods).toBeLessThanOrEqual(LIMIT_S);
    }
  });

  test('the default heartbeat at an hourly schedule is refused with the prop, its value and the limit', () => {
    expect(() => synth({ interval: Duration.hours(1) })).toThrow(
      'EksReaper: thresholds.heartbeatMissedRuns x interval (4 x 3600 s = 14400 s) exceeds 3 hours for the heartbeat-missing alarm: '
      + 'CloudWatch evaluates a Metrics Insights alarm over 3 hours (10800 s) at most. '
      + 'With a 3600 s interval, thresholds.heartbeatMissedRuns may be at most 3');
  });

  test('an interval too long for the alarms with a fixed two periods is refused naming the interval', () => {
    const ones = { heartbeatMissedRuns: 1, backlogRuns: 1, deleteErrorRuns: 1, throttledRuns: 1 };
    expect(() => synth({ interval: Duration.hours(2), thresholds: ones }))
      .toThrow(/interval \(7200 s\) is too long for the subnets-unread alarm \(2 x 7200 s = 14400 s\).*at most 5400 s$/);
    expect(() => synth({ interval: Duration.minutes(90), thresholds: ones })).not.toThrow();
  });

  test('without metric alarms (metricsSink none) nothing is refused', () => {
    expect(() => synth({ metricsSink: 'none', interval: Duration.hours(1) })).not.toThrow();
  });
});

describe('function role name', () => {
  const roleName = (t: Template) => (Object.values(t.findResources('AWS::IAM::Role', {
    Properties: { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })] } },
  })) as any[])[0].Properties.RoleName;

  test('fixed: eks-reaper-<region> by default (IAM names are account-wide), or the given name', () => {
    expect(roleName(synth().template)).toBe(`eks-reaper-${REGION}`);
    expect(roleName(synth({ roleName: 'fleet-a-reaper' }).template)).toBe('fleet-a-reaper');
    const agnostic = new Stack(new App(), 'Agnostic');
    new EksReaper(agnostic, 'Reaper', { clusters: ['a'], code: lambda.Code.fromAsset(FAKE_CODE), alarmNotifications: 'none' });
    expect(flat(roleName(Template.fromStack(agnostic)))).toBe('eks-reaper-${AWS::Region}');
  });

  test('an IAM-invalid name is refused at synth', () => {
    expect(() => synth({ roleName: 'x'.repeat(65) })).toThrow(/roleName must be 1-64 characters.*65 characters/);
    expect(() => synth({ roleName: 'eks reaper' })).toThrow(/roleName must be/);
    expect(() => synth({ roleName: 'x'.repeat(64) })).not.toThrow();
  });
});
