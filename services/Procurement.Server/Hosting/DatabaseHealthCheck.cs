using Microsoft.Extensions.Diagnostics.HealthChecks;
using Procurement.Storage;

namespace Procurement.Server.Hosting;

/// <summary>
/// Healthy when the database answers a read; feeds the standard gRPC health service. The answer is
/// reused for a second (measured on the monotonic clock, not the business clock), so a flood of
/// probes does not become a flood of reads.
/// </summary>
public sealed class DatabaseHealthCheck(IProcurementStore store) : IHealthCheck
{
    private const long ReuseMilliseconds = 1000;
    // A reference, so concurrent probes swap whole answers (a struct this size could tear).
    private Answer? _last;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _last) is { } last && Environment.TickCount64 - last.At < ReuseMilliseconds)
        {
            return last.Result;
        }

        HealthCheckResult result;
        try
        {
            await store.ReadAsync(s => s.Pools.ListAsync("", 1), cancellationToken);
            result = HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            result = HealthCheckResult.Unhealthy("The database does not answer.", ex);
        }

        Volatile.Write(ref _last, new Answer(Environment.TickCount64, result));
        return result;
    }

    private sealed record Answer(long At, HealthCheckResult Result);
}

/// <summary>The names of the gRPC health services a probe asks for, and the check tags behind them.</summary>
public static class HealthServices
{
    public const string Liveness = "liveness";
    public const string Readiness = "readiness";
    public const string LiveTag = "live";
    public const string ReadyTag = "ready";
}
