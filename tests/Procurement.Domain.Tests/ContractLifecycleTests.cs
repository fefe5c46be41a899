using Procurement.Domain.Common;
using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;

namespace Procurement.Domain.Tests;

public class ContractLifecycleTests
{
    private static readonly DateTimeOffset Now = TestTerms.Start.AddDays(10);

    private static Contract Draft() => Contract.CreateDraft("ctr_1", "lab", "Lab", TestTerms.Valid(), Now);

    private static Contract Active()
    {
        var c = Draft();
        c.Activate(Now);
        return c;
    }

    private static ProcurementException Fails(Action action) => Assert.Throws<ProcurementException>(action);

    [Fact]
    public void CreateDraft_StartsAsDraftWithVersionOneAndRevisionOne()
    {
        var c = Draft();
        Assert.Equal(ContractState.Draft, c.StateAt(Now));
        Assert.Equal(1, c.LatestVersion.Version);
        Assert.Equal("1", c.Etag);
    }

    [Fact]
    public void Activate_Draft_BecomesActiveAndChangesEtag()
    {
        var c = Draft();
        c.Activate(Now);
        Assert.Equal(ContractState.Active, c.StateAt(Now));
        Assert.Equal(Now, c.ActivatedAt);
        Assert.Equal("2", c.Etag);
    }

    [Fact]
    public void Activate_TermAlreadyOver_IsRefused()
    {
        var c = Draft();
        var e = Fails(() => c.Activate(TestTerms.Start.AddMonths(37)));
        Assert.Equal(ErrorReasons.TermEnded, e.Reason);
    }

    [Fact]
    public void Activate_Twice_IsAnInvalidState()
    {
        var c = Active();
        var e = Fails(() => c.Activate(Now));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal(ErrorReasons.InvalidState, e.Reason);
    }

    [Fact]
    public void SuspendAndResume_MoveBetweenActiveAndSuspended()
    {
        var c = Active();
        c.Suspend("unpaid invoice", Now);
        Assert.Equal(ContractState.Suspended, c.StateAt(Now));
        Assert.Equal("unpaid invoice", c.StateReason);
        c.Resume(Now);
        Assert.Equal(ContractState.Active, c.StateAt(Now));
        Assert.Null(c.StateReason);
    }

    [Fact]
    public void Suspend_Draft_IsRefused() => Assert.Equal(ErrorReasons.InvalidState, Fails(() => Draft().Suspend(null, Now)).Reason);

    [Fact]
    public void Resume_Active_IsRefused() => Assert.Equal(ErrorReasons.InvalidState, Fails(() => Active().Resume(Now)).Reason);

    [Fact]
    public void Terminate_FromActiveOrSuspended_IsFinal()
    {
        var a = Active();
        a.Terminate("breach", Now);
        Assert.Equal(ContractState.Terminated, a.StateAt(Now));
        Fails(() => a.Resume(Now));
        Fails(() => a.Suspend(null, Now));
        Fails(() => a.Terminate(null, Now));

        var s = Active();
        s.Suspend(null, Now);
        s.Terminate(null, Now);
        Assert.Equal(ContractState.Terminated, s.StateAt(Now));
    }

    [Fact]
    public void Terminate_Draft_IsRefused() => Fails(() => Draft().Terminate(null, Now));

    [Fact]
    public void StateAt_ActiveOrSuspendedPastTermEnd_ReadsExpired()
    {
        var end = TestTerms.Start.AddMonths(36);
        var a = Active();
        Assert.Equal(ContractState.Active, a.StateAt(end.AddMilliseconds(-1)));
        Assert.Equal(ContractState.Expired, a.StateAt(end));
        a.Suspend(null, Now);
        Assert.Equal(ContractState.Expired, a.StateAt(end));
        Assert.Equal(ContractState.Draft, Draft().StateAt(end));
    }

    [Fact]
    public void Expired_CannotBeResumedOrSuspended()
    {
        var a = Active();
        var after = TestTerms.Start.AddMonths(40);
        Assert.Equal("EXPIRED", Fails(() => a.Suspend(null, after)).Metadata["state"]);
    }

    [Fact]
    public void UpdateDraft_ReplacesTermsInPlace_OnlyWhileDraft()
    {
        var c = Draft();
        var terms = TestTerms.Valid() with { MonthlyCommitmentMicros = 5 };
        c.UpdateDraft("Renamed", terms, Now);
        Assert.Equal("Renamed", c.DisplayName);
        Assert.Single(c.Versions);
        Assert.Equal(5, c.Versions[0].Terms.MonthlyCommitmentMicros);
        c.Activate(Now);
        Fails(() => c.UpdateDraft("Again", terms, Now));
    }

    [Fact]
    public void Amend_FutureMonth_AddsAVersionEffectiveFromThatMonthStart()
    {
        var c = Active();
        var now = new DateTimeOffset(2026, 3, 15, 0, 0, 0, TimeSpan.Zero);
        var v = c.Amend(new BillingMonth(2026, 4), TestTerms.Valid() with { MonthlyCommitmentMicros = 7 }, now);
        Assert.Equal(2, v.Version);
        Assert.Equal(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero), v.EffectiveFrom);
        Assert.Equal(1, c.VersionAt(new DateTimeOffset(2026, 3, 31, 23, 59, 59, TimeSpan.Zero)).Version);
        Assert.Equal(2, c.VersionAt(v.EffectiveFrom).Version);
    }

    [Fact]
    public void Amend_CurrentMonthAfterTheFirst_IsRefused()
    {
        var c = Active();
        var now = new DateTimeOffset(2026, 3, 15, 0, 0, 0, TimeSpan.Zero);
        var e = Fails(() => c.Amend(new BillingMonth(2026, 3), TestTerms.Valid(), now));
        Assert.Equal(ErrorReasons.AmendmentNotAllowed, e.Reason);
        Assert.Equal("effective_month", e.FieldViolations.Single().Field);
    }

    [Fact]
    public void Amend_CurrentMonthDuringTheFirstMonth_IsEffectiveFromTermStart()
    {
        var start = new DateTimeOffset(2026, 1, 10, 0, 0, 0, TimeSpan.Zero);
        var terms = TestTerms.Valid() with { StartTime = start };
        var c = Contract.CreateDraft("ctr_2", "lab", "Lab", terms, start);
        c.Activate(start);
        var v = c.Amend(new BillingMonth(2026, 1), terms with { MonthlyCommitmentMicros = 1 }, start.AddDays(3));
        Assert.Equal(start, v.EffectiveFrom);
        Assert.Equal(2, c.VersionAt(start).Version);
    }

    [Fact]
    public void Amend_ChangingStartOrCurrency_NamesBothFields()
    {
        var c = Active();
        var e = Fails(() => c.Amend(new BillingMonth(2026, 6), TestTerms.Valid() with { StartTime = TestTerms.Start.AddDays(1), CurrencyCode = "EUR" }, Now));
        Assert.Equal(["terms.start_time", "terms.currency_code"], e.FieldViolations.Select(v => v.Field));
    }

    [Fact]
    public void Amend_Suspended_IsRefused()
    {
        var c = Active();
        c.Suspend(null, Now);
        Assert.Equal(ErrorReasons.InvalidState, Fails(() => c.Amend(new BillingMonth(2026, 6), TestTerms.Valid(), Now)).Reason);
    }

    [Fact]
    public void Amend_ExtendingTheTerm_MovesTheTermEnd()
    {
        var c = Active();
        var longer = TestTerms.Valid() with { EndTime = TestTerms.Start.AddMonths(48) };
        c.Amend(new BillingMonth(2026, 6), longer, Now);
        Assert.Equal(TestTerms.Start.AddMonths(48), c.TermEnd);
        Assert.Equal(ContractState.Active, c.StateAt(TestTerms.Start.AddMonths(40)));
    }

    [Fact]
    public void CheckEtag_StaleEtag_IsAborted()
    {
        var c = Active();
        var e = Fails(() => c.CheckEtag("1", required: true));
        Assert.Equal(ErrorKind.Aborted, e.Kind);
        Assert.Equal(ErrorReasons.EtagMismatch, e.Reason);
        c.CheckEtag("2", required: true);
        c.CheckEtag("", required: false);
        Assert.Equal(ErrorKind.InvalidArgument, Fails(() => c.CheckEtag("", required: true)).Kind);
    }

    [Fact]
    public void Shared_Contract_CanBeReadButNotChanged()
    {
        var c = Active().Share();
        Assert.Equal(ContractState.Active, c.StateAt(Now));
        Assert.Throws<InvalidOperationException>(() => c.Suspend("maintenance", Now));
        Assert.Throws<InvalidOperationException>(() => c.Terminate(null, Now));
        Assert.Throws<InvalidOperationException>(() => c.Amend(BillingMonth.Of(Now).Next, TestTerms.Valid(), Now));
        Assert.Equal(ContractState.Active, c.StateAt(Now));
        Assert.Equal("2", c.Etag);
    }
}
