using Grpc.Core;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace Procurement.Client.Resilience;

/// <summary>
/// Runs one logical call through its pipeline. Each attempt carries a gRPC deadline; failures come
/// out as <see cref="ProcurementRpcException"/>; the caller's cancellation comes out as cancellation.
/// </summary>
public sealed class CallRunner
{
    /// <summary>The deadline sent with an attempt trails the client's own attempt timeout, so the client decides first.</summary>
    private static readonly TimeSpan DeadlineMargin = TimeSpan.FromSeconds(1);

    private readonly ProcurementClientOptions _options;

    public CallRunner(ProcurementClientOptions options, ILoggerFactory? loggerFactory = null)
    {
        options.Validate();
        _options = options;
        var logger = (loggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("Procurement.Client");
        Reads = ProcurementPipelines.Build(CallKind.Read, options, logger);
        Mutations = ProcurementPipelines.Build(CallKind.Mutation, options, logger);
    }

    public ResiliencePipeline Reads { get; }

    public ResiliencePipeline Mutations { get; }

    public ProcurementClientOptions Options => _options;

    public async Task<TResponse> UnaryAsync<TResponse>(CallKind kind, Func<CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken cancellationToken)
    {
        var pipeline = kind == CallKind.Read ? Reads : Mutations;
        return await RunAsync(pipeline, kind, async token =>
        {
            using var pending = call(AttemptOptions(token));
            return await pending.ResponseAsync.ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs any attempt (e.g. a whole client stream) through a pipeline, with the same error mapping.</summary>
    public async Task<T> RunAsync<T>(ResiliencePipeline pipeline, CallKind kind, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellationToken)
    {
        var tag = new KeyValuePair<string, object?>("kind", kind == CallKind.Read ? "procurement-read" : "procurement-mutation");
        using var call = ClientMetrics.Activities.StartActivity("procurement.client.call", System.Diagnostics.ActivityKind.Internal);
        call?.SetTag("procurement.call.kind", tag.Value);
        var attempts = 0;
        try
        {
            return await pipeline.ExecuteAsync(async token =>
            {
                ClientMetrics.Attempts.Add(1, tag);
                // The attempt's span is the parent the server sees (its trace context goes in the call's headers).
                using var span = ClientMetrics.Activities.StartActivity("procurement.client.attempt", System.Diagnostics.ActivityKind.Client);
                span?.SetTag("procurement.attempt", ++attempts);
                try
                {
                    return await attempt(token).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, e is RpcException r ? r.StatusCode.ToString() : e.GetType().Name);
                    throw;
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw ProcurementRpcException.From(e);
        }
        catch (BrokenCircuitException e)
        {
            throw new ProcurementRpcException(StatusCode.Unavailable, ProcurementRpcException.CircuitOpen,
                $"The circuit is open after repeated failures; calls fail fast for up to {_options.BreakerBreakDuration}.", [], new Dictionary<string, string>(), e);
        }
        catch (TimeoutRejectedException e)
        {
            throw new ProcurementRpcException(StatusCode.DeadlineExceeded, ProcurementRpcException.TimedOut,
                $"No answer within {e.Timeout}.", [], new Dictionary<string, string>(), e);
        }
        catch (RpcException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            // Not the caller's cancellation: the transport gave up on a call whose server went away.
            throw new ProcurementRpcException(StatusCode.Unavailable, null, "The call was cut off before the server answered.", [], new Dictionary<string, string>(), e);
        }
    }

    /// <summary>Per attempt: a wall-clock deadline the server sees, and the pipeline's token.</summary>
    public CallOptions AttemptOptions(CancellationToken token) =>
        new(deadline: TimeProvider.System.GetUtcNow().UtcDateTime + _options.AttemptTimeout + DeadlineMargin, cancellationToken: token);
}
