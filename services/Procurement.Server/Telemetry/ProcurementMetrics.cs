using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Procurement.Domain.Allocations;
using Procurement.Storage;
using AllocationEvent = Procurement.Storage.Repositories.AllocationEvent;

namespace Procurement.Server.Telemetry;

/// <summary>
/// The server's own instruments, on the meter <c>Procurement.Server</c>, named by OpenTelemetry's
/// conventions (docs/operations.md lists each). Decisions are counted once committed; preemptions,
/// queue admissions and expiries come from the allocation events as their transactions commit.
/// </summary>
public sealed class ProcurementMetrics
{
    public const string MeterName = "Procurement.Server";

    private const int MaxQueuedTracked = 100_000;

    private static readonly double[] SecondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Counter<long> _decisions;
    private readonly Counter<long> _preemptions;
    private readonly Counter<long> _preemptedUnits;
    private readonly Histogram<double> _queueWait;
    private readonly Counter<long> _samples;
    private readonly Histogram<double> _computation;
    private readonly Counter<long> _storageErrors;
    private readonly Histogram<double> _rpcDuration;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _queuedAt = new(StringComparer.Ordinal);

    public ProcurementMetrics(IMeterFactory meterFactory, StorageInstruments storage)
    {
        Meter = meterFactory.Create(MeterName);
        _decisions = Meter.CreateCounter<long>("procurement.admission.decisions", "{decision}", "Admission decisions on committed requests, by outcome and reason.");
        _preemptions = Meter.CreateCounter<long>("procurement.preemptions", "{allocation}", "Allocations preempted, by cause.");
        _preemptedUnits = Meter.CreateCounter<long>("procurement.preempted.units", "{unit}", "Units taken back by preemption, by cause.");
        _queueWait = Meter.CreateHistogram<double>("procurement.queue.wait", "s", "How long a queued request waited before it was admitted.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1, 10, 60, 300, 1800, 3600, 21600, 86400] });
        _samples = Meter.CreateCounter<long>("procurement.usage.samples", "{sample}", "Usage samples received, by result: accepted, duplicate, rejected.");
        _computation = Meter.CreateHistogram<double>("procurement.statement.duration", "s", "How long a statement, SLA report or quote took to compute.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        _storageErrors = Meter.CreateCounter<long>("procurement.storage.errors", "{error}", "Calls answered UNAVAILABLE because storage failed, by reason.");
        _rpcDuration = Meter.CreateHistogram<double>("rpc.server.call.duration", "s", "gRPC calls handled, by method and gRPC status code.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        storage.AllocationEventCommitted += OnEvent;
        InitializeSeries();
    }

    /// <summary>
    /// Series that alerts and dashboards rate() exist from the start, at zero, not from the first
    /// event. Called again once a late listener (the scrape endpoint's) has started.
    /// </summary>
    public void InitializeSeries()
    {
        foreach (var reason in new[] { "STORAGE_UNAVAILABLE", "STORAGE_BUSY" })
        {
            _storageErrors.Add(0, new KeyValuePair<string, object?>("reason", reason));
        }

        foreach (var cause in new[] { AllocationCause.GuaranteedRequest, AllocationCause.HigherPriorityRequest, AllocationCause.CapacityReduced })
        {
            _preemptions.Add(0, new KeyValuePair<string, object?>("cause", Snake(cause.ToString())));
            _preemptedUnits.Add(0, new KeyValuePair<string, object?>("cause", Snake(cause.ToString())));
        }
    }

    public Meter Meter { get; }

    public void Decided(AdmissionOutcome outcome, string? reason, bool guaranteed) =>
        _decisions.Add(1, new("outcome", Snake(outcome.ToString())), new("reason", reason ?? ""), new("guaranteed", guaranteed));

    public void Samples(long accepted, long duplicate, long rejected)
    {
        _samples.Add(accepted, new KeyValuePair<string, object?>("result", "accepted"));
        _samples.Add(duplicate, new KeyValuePair<string, object?>("result", "duplicate"));
        _samples.Add(rejected, new KeyValuePair<string, object?>("result", "rejected"));
    }

    public void Computed(string kind, TimeSpan elapsed) => _computation.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("kind", kind));

    public void StorageError(string reason) => _storageErrors.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void RpcCompleted(string method, Grpc.Core.StatusCode code, TimeSpan elapsed)
    {
        var slash = method.LastIndexOf('/');
        _rpcDuration.Record(elapsed.TotalSeconds,
            new("rpc.system", "grpc"), new("rpc.service", slash > 1 ? method[1..slash] : method), new("rpc.method", method[(slash + 1)..]),
            new("rpc.grpc.status_code", (int)code));
    }

    private void OnEvent(AllocationEvent e)
    {
        switch (e.Type)
        {
            case AllocationEventType.Queued:
                // Requests queued here but admitted or cancelled by another replica are never seen
                // again: the map is bounded rather than left to grow.
                if (_queuedAt.Count >= MaxQueuedTracked)
                {
                    _queuedAt.Clear();
                }

                _queuedAt[e.AllocationId] = e.OccurredAt;
                break;
            case AllocationEventType.Admitted when _queuedAt.TryRemove(e.AllocationId, out var queued):
                _queueWait.Record((e.OccurredAt - queued).TotalSeconds, new KeyValuePair<string, object?>("pool", e.PoolId));
                break;
            case AllocationEventType.Cancelled:
                _queuedAt.TryRemove(e.AllocationId, out _);
                break;
            case AllocationEventType.Preempted:
                var cause = new KeyValuePair<string, object?>("cause", Snake(e.Cause.ToString()));
                _preemptions.Add(1, cause);
                _preemptedUnits.Add(e.Units, cause);
                break;
        }
    }

    private static string Snake(string pascal) => string.Concat(pascal.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
