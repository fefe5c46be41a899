using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Procurement.Domain.Errors;

namespace Procurement.Server.Auth;

/// <summary>One role's fair-use limits, per API key. Zero turns a limit off.</summary>
public sealed class KeyLimits
{
    /// <summary>Calls a second, sustained (a token bucket refilled every 100 ms).</summary>
    public int RequestsPerSecond { get; set; }

    /// <summary>Calls that may come at once above the sustained rate (the bucket's size).</summary>
    public int Burst { get; set; }

    /// <summary>Calls in flight at once, streams of usage included; watch streams count apart.</summary>
    public int ConcurrentCalls { get; set; }

    /// <summary>Open <c>WatchAllocations</c> streams.</summary>
    public int WatchStreams { get; set; }
}

/// <summary>The <c>Procurement:FairUse</c> section: limits per key, by the key's role.</summary>
public sealed class FairUseOptions
{
    public const string Section = "Procurement:FairUse";

    /// <summary>The provider's own staff and tools: no rate limit (their volume is the provider's to size), a concurrency bound.</summary>
    public KeyLimits Operator { get; set; } = new() { RequestsPerSecond = 0, Burst = 0, ConcurrentCalls = 1024, WatchStreams = 64 };

    public KeyLimits Customer { get; set; } = new() { RequestsPerSecond = 20_000, Burst = 40_000, ConcurrentCalls = 512, WatchStreams = 16 };

    public KeyLimits Meter { get; set; } = new() { RequestsPerSecond = 20_000, Burst = 40_000, ConcurrentCalls = 128, WatchStreams = 8 };

    public KeyLimits For(Role role) => role switch
    {
        Role.Operator => Operator,
        Role.Customer => Customer,
        _ => Meter,
    };
}

/// <summary>
/// Fair use per API key, so one key flooding the server cannot starve the others: a token bucket
/// for the rate, a bound on calls in flight, and a bound on open watch streams. A call over a limit
/// is refused at once (no queue) with RESOURCE_EXHAUSTED, reason RATE_LIMITED, and a retry delay.
/// </summary>
public sealed class FairUse : IDisposable
{
    /// <summary>What a refusal asks the caller to wait when the limiter names no time (a concurrency bound).</summary>
    public static readonly TimeSpan DefaultRetryAfter = TimeSpan.FromMilliseconds(100);

    private static readonly TimeSpan ReplenishmentPeriod = TimeSpan.FromMilliseconds(100);
    private readonly PartitionedRateLimiter<Principal> _rate;
    private readonly PartitionedRateLimiter<Principal> _concurrent;
    private readonly PartitionedRateLimiter<Principal> _watches;
    private readonly PartitionedRateLimiter<Principal> _calls;
    private readonly PartitionedRateLimiter<Principal> _streams;

    public FairUse(IOptions<FairUseOptions> options)
    {
        var o = options.Value;
        _rate = PartitionedRateLimiter.Create<Principal, string>(p => o.For(p.Role) is { RequestsPerSecond: > 0 } l
            ? RateLimitPartition.GetTokenBucketLimiter(p.KeyId, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = Math.Max(l.Burst, PerPeriod(l.RequestsPerSecond)),
                TokensPerPeriod = PerPeriod(l.RequestsPerSecond),
                ReplenishmentPeriod = ReplenishmentPeriod,
                QueueLimit = 0,
                AutoReplenishment = true,
            })
            : RateLimitPartition.GetNoLimiter(p.KeyId));
        _concurrent = Concurrency(p => o.For(p.Role).ConcurrentCalls);
        _watches = Concurrency(p => o.For(p.Role).WatchStreams);
        _calls = PartitionedRateLimiter.CreateChained(_rate, _concurrent);
        _streams = PartitionedRateLimiter.CreateChained(_rate, _watches);
    }

    /// <summary>A lease held for the call's whole length; throws RATE_LIMITED when the key is over a limit.</summary>
    public RateLimitLease Acquire(Principal principal, bool watchStream)
    {
        var lease = (watchStream ? _streams : _calls).AttemptAcquire(principal);
        if (lease.IsAcquired)
        {
            return lease;
        }

        var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) && after > TimeSpan.Zero ? after : DefaultRetryAfter;
        lease.Dispose();
        throw new ProcurementException(ErrorKind.ResourceExhausted, ErrorReasons.RateLimited,
            watchStream
                ? "This API key has as many watch streams open as it may; close one, or retry later."
                : "This API key is over its fair-use limit; retry after the delay in RetryInfo.",
            metadata: new Dictionary<string, string> { ["key_id"] = principal.KeyId, ["role"] = principal.RoleName },
            retryAfter: retryAfter);
    }

    public void Dispose()
    {
        _calls.Dispose();
        _streams.Dispose();
        _rate.Dispose();
        _concurrent.Dispose();
        _watches.Dispose();
    }

    private static int PerPeriod(int perSecond) => Math.Max(1, perSecond / 10);

    private static PartitionedRateLimiter<Principal> Concurrency(Func<Principal, int> limit) =>
        PartitionedRateLimiter.Create<Principal, string>(p => limit(p) > 0
            ? RateLimitPartition.GetConcurrencyLimiter(p.KeyId, _ => new ConcurrencyLimiterOptions { PermitLimit = limit(p), QueueLimit = 0 })
            : RateLimitPartition.GetNoLimiter(p.KeyId));
}

/// <summary>Every limit is zero (off) or positive; a negative one stops the server at start, named.</summary>
public sealed class FairUseOptionsValidator : IValidateOptions<FairUseOptions>
{
    public ValidateOptionsResult Validate(string? name, FairUseOptions options)
    {
        var failures = new List<string>();
        foreach (var (role, limits) in new[] { ("Operator", options.Operator), ("Customer", options.Customer), ("Meter", options.Meter) })
        {
            foreach (var (setting, value) in new[]
            {
                (nameof(KeyLimits.RequestsPerSecond), limits.RequestsPerSecond), (nameof(KeyLimits.Burst), limits.Burst),
                (nameof(KeyLimits.ConcurrentCalls), limits.ConcurrentCalls), (nameof(KeyLimits.WatchStreams), limits.WatchStreams),
            })
            {
                if (value < 0)
                {
                    failures.Add($"{FairUseOptions.Section}:{role}:{setting} must be zero (no limit) or more; it is {value}.");
                }
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
