using System.Diagnostics.Metrics;

namespace Procurement.Client.Resilience;

/// <summary>The client's instruments, on the meter <c>Procurement.Client</c>.</summary>
public static class ClientMetrics
{
    public const string MeterName = "Procurement.Client";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Spans: one per logical call, with one child per attempt, so retries show in a trace.</summary>
    public static readonly System.Diagnostics.ActivitySource Activities = new(MeterName);

    /// <summary>Every attempt sent to the server, first tries and retries alike.</summary>
    public static readonly Counter<long> Attempts = Meter.CreateCounter<long>("procurement.client.attempts", description: "gRPC attempts sent");

    public static readonly Counter<long> Retries = Meter.CreateCounter<long>("procurement.client.retries", description: "Attempts retried after no answer");

    public static readonly Counter<long> BreakerTransitions = Meter.CreateCounter<long>("procurement.client.breaker.transitions", description: "Circuit breaker state changes");
}
